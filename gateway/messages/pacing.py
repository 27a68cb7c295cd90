"""A paced event loop: traffic wakes the gateway at most about once per interval, and whatever
arrived meanwhile is read, decided, committed and forwarded together.

At a moderate rate every device message used to cost its own wake-ups: the PUBLISH arrives
(a wake-up, a ``recv``, a batch of one, a transaction of one), the recipient's PUBACK arrives
(another wake-up), the next PUBLISH a millisecond later (another). Each wake-up is a context
switch, an ``epoll_wait`` and a turn of the loop in Python, and a batch of one pays a whole
transaction (README, "Figures", for what pacing saves).

``PacedSelector`` is the selector under asyncio's loop. When a socket becomes readable (or
writable) sooner than ``interval`` after the previous wake-up for traffic, it sleeps out the
rest of the interval first and then hands the loop everything that is ready by then: the
packets of several devices in one read, the recipients' PUBACKs of several publishes, one
transaction and one fsync for all of them, one ``send`` per socket. So a message is read at most
``interval`` later than it would have been (``pipeline.wake_interval_ms``, 2 ms by default; 0
turns pacing off), and only when traffic is dense enough that the wait saves a wake-up:

- a wake-up after a quiet spell longer than the interval happens at once (a site at 10 msg/s
  is not slowed down at all);
- a loop with work already queued polls without waiting (asyncio passes timeout 0), so a busy
  gateway is never held back: when the CPU is the limit the pacing is inert;
- a pause never runs past the loop's own timeout, so a timer (a keepalive, a fence's deadline,
  the checkpoint) is not late for it;
- epoll waits in whole milliseconds, so a pause is a whole number of them, chosen here:
  the rest of the interval rounded up while that holds no message longer than the interval
  from the moment the loop saw it (a little more is gathered), else rounded down. With a
  whole number of milliseconds (the default) every pause rounds up; with a fraction (7.5) a
  pause may be up to a millisecond shorter than the rest of the interval; below 1 ms nothing
  is held. (The kernel's timer slack, 50 µs by default, and any scheduling delay come on top
  of any wait.) Python's selector rounds a timeout to milliseconds once more on its own and
  then waited 10 ms for 9, so the pause is asked of epoll directly;
- the loop's own wake-up pipe is exempt: through it a helper thread says that a commit
  finished (``gateway/messages/handoff.py``), which is the end of work already read. It wakes
  the loop at once and ends a pause under way, so the acknowledgements and publishes a commit
  releases leave at once rather than an interval later.

Nothing here changes what happens, only when the loop looks: no message is dropped or
reordered, and every acknowledgement still follows its commit.
"""

from __future__ import annotations

import asyncio
import math
import select
import selectors
import socket
import time
from collections.abc import Callable

__all__ = ["PacedSelector", "paced_loop_factory"]

_Events = list[tuple[selectors.SelectorKey, int]]


class PacedSelector(selectors.DefaultSelector):
    """The platform's selector, waking for traffic at most about once per ``interval`` seconds
    (in whole milliseconds: see the module's text)."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self.pauses = 0  # wake-ups for traffic held back so far (the benchmark and tests read it)
        self._woke = 0.0  # time.monotonic() of the last wake-up for traffic
        self._exempt: set[int] = set()
        # What a pause waits on: the exempt fds alone, so an answer from a thread ends it.
        self._waker = select.epoll()

    def exempt(self, fd: int) -> None:
        """Readiness of ``fd`` wakes the loop at once, ends a pause, and is not traffic."""
        self._exempt.add(fd)
        self._waker.register(fd, select.EPOLLIN)

    def select(self, timeout: float | None = None) -> _Events:
        started = time.monotonic()
        events = super().select(timeout)
        if timeout is not None and timeout <= 0:
            return events  # the loop has work queued: it is only looking, never held back
        exempt = self._exempt
        if not any(key.fd not in exempt for key, _ in events):
            return events  # a timer, or only an answer from a thread: at once
        now = time.monotonic()
        held = self._held_ms(self._woke + self.interval - now)
        if timeout is not None:
            # A timer due sooner is not overshot (beyond epoll's own rounding up, as ever).
            held = min(held, math.ceil(_ms(started + timeout - now)))
        if held > 0 and not any(key.fd in exempt for key, _ in events):
            self.pauses += 1
            # epoll.poll rounds seconds up to whole milliseconds: half a millisecond under
            # ``held`` asks for exactly ``held``, whatever the float's last digit. Ends early
            # if a thread answers meanwhile.
            self._waker.poll((held - 0.5) / 1000)
            # Level-triggered: what was ready is still ready, with whatever arrived meanwhile.
            events = super().select(0) or events
            now = time.monotonic()
        self._woke = now
        return events

    def _held_ms(self, pause: float) -> int:
        """The whole milliseconds to hold traffic that came with ``pause`` seconds of the
        interval left: rounded up while that is no longer than the interval (it gathers a little
        more, and no message waits past the interval for it), else down (a fractional one)."""
        if pause <= 0:
            return 0
        left = _ms(pause)
        up = math.ceil(left)
        return up if up <= _ms(self.interval) else math.floor(left)

    def close(self) -> None:
        self._waker.close()
        super().close()


def _ms(seconds: float) -> float:
    """Milliseconds, to the nanosecond: float noise (2.0000000001 ms) is not a millisecond more
    once rounded up."""
    return round(seconds * 1000, 6)


def paced_loop_factory(interval: float) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory for ``asyncio.Runner``: a selector loop on a ``PacedSelector``."""

    def make() -> asyncio.AbstractEventLoop:
        selector = PacedSelector(interval)
        loop = asyncio.SelectorEventLoop(selector)
        # asyncio keeps its wake-up pipe in a private attribute; without it (another Python),
        # answers from threads are paced too, an interval later at most: still correct.
        self_pipe = getattr(loop, "_ssock", None)
        if isinstance(self_pipe, socket.socket):
            selector.exempt(self_pipe.fileno())
        return loop

    return make
