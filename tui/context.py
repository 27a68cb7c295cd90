"""What screens need from the running app, as a protocol (no import cycle with ``tui.app``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Protocol, cast

from textual.dom import DOMNode

from tui.i18n import Lang
from tui.model import Names
from tui.source import DataSource

__all__ = ["UiContext", "ctx"]


class UiContext(Protocol):
    lang: Lang
    names: Names
    tz: tzinfo | None
    source: DataSource
    clock: Callable[[], datetime]


def ctx(node: DOMNode) -> UiContext:
    """The app ``node`` runs in, seen through ``UiContext``."""
    return cast(UiContext, node.app)
