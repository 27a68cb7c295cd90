"""A clock for tests that set the time by hand, back as well as forward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass
class SetClock:
    """``GatewayClock`` reading ``at()`` as it is, never behind (no log floor to be behind of);
    ``behind``, when set, is the system clock's reading a test says lags behind ``at()``: the
    one other moment grants are judged at."""

    at: Callable[[], datetime]
    behind: datetime | None = None

    def now(self) -> datetime:
        return self.at()

    def also_at(self) -> tuple[datetime | None, ...]:
        return () if self.behind is None else (self.behind,)
