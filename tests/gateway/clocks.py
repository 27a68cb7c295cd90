"""A clock for tests that set the time by hand, back as well as forward."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest


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


def suspendable(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Linux's clock that counts while the machine is suspended (``CLOCK_BOOTTIME``) made to run
    ahead of the monotonic clock, which stands still in a suspend: set the returned cell's one
    value to the seconds the box slept."""
    real = time.clock_gettime
    slept = [0.0]

    def boottime(clock: int) -> float:
        return real(clock) + (slept[0] if clock == time.CLOCK_BOOTTIME else 0.0)

    monkeypatch.setattr(time, "clock_gettime", boottime)
    return slept
