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
transaction and one fsync for all of them, one ``send`` per socket. So a message waits at most
``interval`` longer than it would have (``pipeline.wake_interval_ms``, 2 ms by default; 0
turns pacing off), and only when traffic is dense enough that the wait saves a wake-up:

- a wake-up after a quiet spell longer than the interval happens at once (a site at 10 msg/s
  is not slowed down at all);
- a loop with work already queued polls without waiting (asyncio passes timeout 0), so a busy
  gateway is never held back: at saturation the pacing is inert;
- the loop's own wake-up pipe is exempt: through it a helper thread says that a commit
  finished (``gateway/messages/handoff.py``), which is the end of work already read — the
  acknowledgements and publishes it releases leave at once rather than an interval later.

Nothing here changes what happens, only when the loop looks: no message is read before its
commit slot, dropped or reordered, and every acknowledgement still follows its commit.
"""

from __future__ import annotations

import asyncio
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
        self._woke = 0.0  # time.monotonic() of the last wake-up for traffic
        self._exempt: set[int] = set()

    def exempt(self, fd: int) -> None:
        """Readiness of ``fd`` alone wakes the loop at once and does not count as traffic."""
        self._exempt.add(fd)

    def select(self, timeout: float | None = None) -> _Events:
        events = super().select(timeout)
        if timeout is not None and timeout <= 0:
            return events  # the loop has work queued: it is only looking, never held back
        traffic = any(key.fd not in self._exempt for key, _ in events)
        if not traffic:
            return events
        now = time.monotonic()
        pause = self._woke + self.interval - now
        if pause > 0:
            time.sleep(pause)
            # Level-triggered: what was ready is still ready, with whatever arrived meanwhile.
            events = super().select(0) or events
            now = time.monotonic()
        self._woke = now
        return events


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
