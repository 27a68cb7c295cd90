"""The gateway's time: the wall clock, never earlier than what the log already says.

A clock stepped back (a wrong NTP server, a dead RTC battery at boot, a hand-set date) would
otherwise revive a consent that expired or a grant whose validity ended, and write entries
dated before ones already committed. So every decision and every entry takes its time from
``now()``: the wall clock, or the newest time a committed entry carries if the wall clock is
behind it. A step back is logged once when it starts, and ``status()`` says how far behind the
wall clock is and how often it stepped back, until it catches up.

While the wall clock is behind, the log's time stands still, and no one time can be trusted: a
clock once stepped forward may have carried the log's time ahead of the real one, a clock reset
at boot may be far behind it, and a clock stepped back by mistake is behind the real time by the
step while the log's time falls behind it by the time that passes. So ``also_at()`` gives, then,
the wall clock's reading and the last reading it was not behind at, carried forward by the time
that has passed since on a clock no one sets (what the wall clock would say had it not been
stepped back), or, in a process that started while it was behind, "some time later"; every
decision judges grants at these as well (``policies.moments``), and what one of them would not
allow is withheld, saying why. While behind, each time handed out is a microsecond after the one
before, so the order of what happens is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["ForwardClock", "GatewayClock", "elapsed"]

_TICK = timedelta(microseconds=1)

log = logging.getLogger(__name__)


def _wall() -> datetime:
    return datetime.now(UTC)


# Linux's clock that counts while the machine is suspended; elsewhere the monotonic clock.
_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def elapsed() -> float:
    """Seconds on a clock no one sets, counting while the machine is suspended (CLOCK_BOOTTIME;
    elsewhere the monotonic clock, which may stop then). Messages are stamped with it when the
    broker hands them over, and rate limits measure their intervals on it: on the monotonic
    clock an hour's suspend would not count, and the first message after it would be withheld
    as "came too soon" although an hour had passed."""
    return time.monotonic() if _BOOTTIME is None else time.clock_gettime(_BOOTTIME)


class GatewayClock(Protocol):
    """What deciding needs of the clock: the time to decide and date entries at, and the other
    moments grants are judged at while the wall clock is behind it (``ForwardClock.also_at``)."""

    def now(self) -> datetime: ...

    def also_at(self) -> tuple[datetime | None, ...]: ...


class ForwardClock:
    def __init__(
        self,
        floor: Callable[[], datetime | None],
        wall: Callable[[], datetime] = _wall,
        monotonic: Callable[[], float] = elapsed,
    ) -> None:
        self._floor = floor  # the newest committed entry time (the log writer's)
        self.wall = wall  # replaceable: tests step it back
        self._monotonic = monotonic
        self._last: datetime | None = None  # the latest time handed out
        # The last wall clock reading that was not behind, and the monotonic clock then.
        self._trusted: tuple[datetime, float] | None = None
        self.steps_back = 0
        self.behind_s = 0.0  # how far the wall clock is behind, now
        self.largest_step_s = 0.0

    def now(self) -> datetime:
        return self.at_least(self.wall())

    def at_least(self, wall: datetime) -> datetime:
        """``wall``, unless that is before the newest time already used or committed."""
        floor = self._floor()
        newest = self._last if floor is None or (self._last and self._last > floor) else floor
        if newest is not None and wall < newest:
            behind = (newest - wall).total_seconds()
            if self.behind_s == 0.0:
                self.steps_back += 1
                log.warning(
                    "the system clock went back %.3f s (to %s, the log is at %s): entries keep "
                    "the log's time, and until the clock catches up a grant releases only what "
                    "every time it may be allows (the rest is withheld as clock_behind); check "
                    "NTP (timedatectl status)",
                    behind,
                    wall.isoformat(),
                    newest.isoformat(),
                )
            self.behind_s = behind
            self.largest_step_s = max(self.largest_step_s, behind)
            # A microsecond on for each time handed out: what happens while the log's time stands
            # still keeps its order (a consent given after a decision is dated after it).
            self._last = newest + _TICK
            return self._last
        if self.behind_s:
            log.warning("the system clock caught up with the log's time again")
            self.behind_s = 0.0
        self._last = wall
        self._trusted = (wall, self._monotonic())
        return wall

    def also_at(self) -> tuple[datetime | None, ...]:
        """While the last ``now()`` found the wall clock behind the log's time: its reading, and
        the last reading it was not behind at carried forward by the time since (see the module
        text), or None when this process has seen none (it started while the clock was behind:
        the real time is some time after the log's, nobody knows how long; ``policies.moments``
        judges what that leaves open). Empty otherwise: one attribute read."""
        if not self.behind_s:
            return ()
        if self._trusted is None:
            return self.wall(), None
        at, then = self._trusted
        return self.wall(), at + timedelta(seconds=self._monotonic() - then)

    def not_before(self, moment: datetime) -> datetime:
        """``moment`` (taken elsewhere, a little earlier), raised to the newest committed time:
        for checks of rows decided before, which must not be judged at a time before them."""
        floor = self._floor()
        return floor if floor is not None and moment < floor else moment

    def status(self) -> dict[str, float | int | list[str | None]]:
        """For ``einblick status``: the steps back, how far behind now, and while behind the
        other times grants are judged at (ISO; None: some time after the log's, unknown)."""
        return {
            "steps_back": self.steps_back,
            "behind_s": self.behind_s,
            "largest_step_s": self.largest_step_s,
            "also_at": [None if at is None else at.isoformat() for at in self.also_at()],
        }
