"""How long messages spend inside the gateway, kept for ``einblick status``, metrics and the
benchmark's breakdown.

Two stages, each a window of the last ``size`` messages:

- received → committed: from the moment the device broker handed the message over to the
  commit of its explanation entries and outbox rows (queueing, deciding, chaining, the fsync).
- outbox → acknowledged, per recipient: from the row entering the outbox (its commit follows at
  once) to the recipient broker's PUBACK (the commit, the forwarder, the network, the
  recipient's broker; while a recipient is down, the wait in the outbox too). Rows read back
  from the database after a restart are not counted: their time in this process is unknown.

Both use the monotonic clock, so a wall-clock step (NTP on a box without a real-time clock)
cannot put absurd figures into them.

A window is a fixed-size ring: the cost is one float per message and the memory is bounded.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

__all__ = ["Latency", "LatencyWindow"]


@dataclass(frozen=True, slots=True)
class Latency:
    """The last ``window`` messages of one stage; percentiles ``None`` while the window is empty.

    Status carries it as ``LatencySummary`` (gateway/operations/status_model.py, read from these
    attributes): the TUI reads the status model and may not import the message path."""

    count: int
    window: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class LatencyWindow:
    def __init__(self, size: int = 10_000) -> None:
        self._seconds: deque[float] = deque(maxlen=size)
        self.count = 0  # every sample ever added, not only those still in the window

    def add(self, seconds: float) -> None:
        self._seconds.append(seconds)
        self.count += 1

    def summary(self) -> Latency:
        """The window's figures in milliseconds; percentiles ``None`` while it is empty."""
        values = list(self._seconds)
        if not values:
            return Latency(count=self.count, window=0, p50_ms=None, p99_ms=None, max_ms=None)
        if len(values) == 1:
            p50 = p99 = values[0]
        else:
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            p50, p99 = cuts[49], cuts[98]
        return Latency(
            count=self.count,
            window=len(values),
            p50_ms=round(p50 * 1000, 3),
            p99_ms=round(p99 * 1000, 3),
            max_ms=round(max(values) * 1000, 3),
        )
