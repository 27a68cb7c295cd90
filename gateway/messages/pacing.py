"""A paced event loop: traffic wakes the gateway at most once per interval, and whatever arrived
meanwhile is read, decided, committed and forwarded together.

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
- epoll waits in whole milliseconds and rounds a timeout up, so a pause is put on that grid
  here: rounded up while that stays within the interval (a little more is gathered, and no
  message waits longer for it), else down. With a whole number of milliseconds (the default)
  every pause rounds up; with a fraction (7.5) a pause may end up to a millisecond before
  the interval is out, never after;
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
import selectors
import socket
import time
from collections.abc import Callable

__all__ = ["PacedSelector", "paced_loop_factory"]

_Events = list[tuple[selectors.SelectorKey, int]]


class PacedSelector(selectors.DefaultSelector):
    """The platform's selector, waking for traffic at most once per ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self.pauses = 0  # wake-ups for traffic held back so far (the benchmark and tests read it)
        self._woke = 0.0  # time.monotonic() of the last wake-up for traffic
        self._exempt: set[int] = set()
        # What a pause waits on: the exempt fds alone, so an answer from a thread ends it.
        self._waker = selectors.DefaultSelector()

    def exempt(self, fd: int) -> None:
        """Readiness of ``fd`` wakes the loop at once, ends a pause, and is not traffic."""
        self._exempt.add(fd)
        self._waker.register(fd, selectors.EVENT_READ)

    def select(self, timeout: float | None = None) -> _Events:
        started = time.monotonic()
        events = super().select(timeout)
        if timeout is not None and timeout <= 0:
            return events  # the loop has work queued: it is only looking, never held back
        exempt = self._exempt
        if not any(key.fd not in exempt for key, _ in events):
            return events  # a timer, or only an answer from a thread: at once
        now = time.monotonic()
        pause = self._whole_ms(self._woke + self.interval - now)
        if timeout is not None:
            pause = min(pause, started + timeout - now)  # a timer due sooner is not overshot
        if pause > 0 and not any(key.fd in exempt for key, _ in events):
            self.pauses += 1
            self._waker.select(pause)  # ends early if a thread answers meanwhile
            # Level-triggered: what was ready is still ready, with whatever arrived meanwhile.
            events = super().select(0) or events
            now = time.monotonic()
        self._woke = now
        return events

    def _whole_ms(self, pause: float) -> float:
        """``pause`` on the millisecond grid epoll waits on (it rounds a timeout up): rounded up
        while that stays within the interval, which gathers a little more at no cost to the
        bound, else down (a fractional interval), so no message is held longer than it."""
        if pause <= 0:
            return pause
        # Rounded to the nanosecond first: float noise (2.0000000001 ms) is not a millisecond more.
        up = math.ceil(round(pause * 1000, 6)) / 1000
        return up if up <= self.interval else math.floor(pause * 1000) / 1000

    def close(self) -> None:
        self._waker.close()
        super().close()


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
