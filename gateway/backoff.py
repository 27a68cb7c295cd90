"""Jittered exponential backoff: the one delay schedule every retry loop in Einblick uses.

Retry loops (an upstream broker that is down, the device broker, a busy or failing database,
Mosquitto restarting) wait ``first``, then twice as long, and so on up to ``cap``, and start
over after a success (``reset``). Each delay is spread by ``±jitter`` around its step, so that
many forwarders losing the same upstream at once do not all knock again at the same instant;
the spread never leaves ``[first, cap]``, so a loop never waits less than its first step nor
longer than its cap.

The random source is injectable (``rng``) so tests see a fixed schedule.
"""

from __future__ import annotations

import asyncio
import random

__all__ = ["Backoff", "database_retry"]


class Backoff:
    """The delays of one retry loop: ``next_delay()`` after each failure, ``reset()`` after a
    success; ``sleep()`` does both the waiting and the stepping."""

    __slots__ = ("_rng", "_step", "cap", "factor", "first", "jitter")

    def __init__(
        self,
        first: float,
        cap: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, got first={first}, cap={cap}")
        if factor < 1:
            raise ValueError(f"backoff factor must be at least 1, got {factor}")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {jitter}")
        self.first = first
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        # Jitter needs spread, not secrecy: an ordinary generator, seeded from the OS.
        self._rng = rng if rng is not None else random.Random()
        self._step = first

    def next_delay(self) -> float:
        """The delay to wait now, and advance the schedule one step."""
        step = self._step
        self._step = min(step * self.factor, self.cap)
        spread = step * self.jitter
        delay = step + self._rng.uniform(-spread, spread)
        return min(max(delay, self.first), self.cap)

    def reset(self) -> None:
        """Back to the first step: the thing we waited for worked."""
        self._step = self.first

    async def sleep(self) -> float:
        """Wait the next delay; returns how long it was (for the log line)."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


def database_retry() -> Backoff:
    """The schedule of every loop that waits for a database refusing it (a full disk, a write
    lock held too long by a command run beside the gateway): soon at first, for a brief lock,
    then every 5 s at most, so it notices space freed within seconds."""
    return Backoff(0.2, 5.0)
