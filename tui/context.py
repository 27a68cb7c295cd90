"""What screens need from the running app, as a protocol (no import cycle with ``tui.app``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, tzinfo
from typing import Any, Protocol, cast

from textual.dom import DOMNode
from textual.worker import Worker

from tui.i18n import Lang
from tui.model import Names
from tui.source import DataSource

__all__ = ["UiContext", "ctx", "start"]


class UiContext(Protocol):
    lang: Lang
    names: Names
    tz: tzinfo | None
    source: DataSource
    clock: Callable[[], datetime]


def ctx(node: DOMNode) -> UiContext:
    """The app ``node`` runs in, seen through ``UiContext``."""
    return cast(UiContext, node.app)


def start(
    node: DOMNode,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    group: str,
    exclusive: bool = False,
    name: str = "",
) -> Worker[None]:
    """Run ``work`` as an async worker of ``node`` (called when the worker starts, so a
    cancelled exclusive worker leaves no coroutine behind un-awaited)."""
    worker: Worker[None] = node.run_worker(work, group=group, exclusive=exclusive, name=name)
    return worker
