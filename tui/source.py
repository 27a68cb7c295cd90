"""The TUI's one door to data: a small interface, so a remote source can be added later.

This version has one implementation, ``tui.local.LocalSource``: the log database opened
read-only, plus the running gateway's control socket for status, policies and withdrawal. A
remote source (an authenticated HTTPS API in front of a fleet) implements the same two protocols.

A customer view (``customer`` set) is enforced here, in the source, for every call: a widget can
ask for anything and still only ever receive that customer's entries, grants and status.

Rows are addressed by their position in a ``LogView`` (the rows that pass a filter, oldest first),
so a widget can scroll a log of millions of entries by asking only for what is on screen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from policies.errors import EinblickError
from tui.model import CustomerPolicy, Detail, Names, Overview, RightResult, Row
from tui.query import Query

__all__ = ["DataSource", "LogView", "SourceError"]


class SourceError(EinblickError):
    """A data source cannot do what was asked; the message says why, for the user."""


class LogView(Protocol):
    """The entries that pass one filter, in log order, addressed by position."""

    @property
    def count(self) -> int:
        """How many rows the view had at its last ``refresh`` (or when made)."""
        ...

    async def refresh(self) -> int:
        """Take in entries committed since the last call; returns how many rows were added."""
        ...

    async def rows(self, start: int, limit: int, find: Query | None = None) -> list[Row]:
        """Rows ``start`` .. ``start + limit - 1``; ``Row.hit`` marks those matching ``find``."""
        ...

    async def locate(self, find: Query, position: int | None, forward: bool) -> int | None:
        """The position of the next (or previous) row after ``position`` matching ``find``."""
        ...

    async def matches(self, find: Query) -> int:
        """How many rows of the view match ``find``."""
        ...


class DataSource(Protocol):
    """Where the TUI gets everything it shows, and where a withdrawal is sent."""

    customer: str | None  # set: a customer view; nothing of other customers ever comes back
    names: Names

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def view(self, flt: Query) -> LogView: ...

    async def detail(self, seq: int) -> Detail | None: ...

    async def overview(self, now: datetime) -> Overview: ...

    async def policies(self) -> tuple[list[CustomerPolicy], bool]:
        """The customers' policies, and whether they come live from the running gateway (True)
        or read-only from the policy files (False)."""
        ...

    async def withdraw(self, customer: str, grant: str, by: str) -> int:
        """Withdraw a consent through the running gateway; returns the log entry's seq."""
        ...

    async def act(self, customer: str, grant: str, action: str, by: str) -> RightResult:
        """A rights action (withdraw, give, object, restrict, lift) through the running
        gateway's control op of that name; its answer, receipt included."""
        ...
