"""Closing aggregation windows: a summary is a decision no device message brings in.

A grant with ``aggregate:`` collects values in the engine (``policies.windows``); nothing
arrives when its window ends, so something must ask. Once a second this asks the engine which
windows closed by now and records each one's decision through the pipeline like a message's
(one transaction: entry and outbox row), so a summary is explained and forwarded under the same
rules. The engine owns the windows; this owns only the asking and its period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from gateway.messages.clock import GatewayClock
from policies.decision import Decision
from policies.engine import Engine

__all__ = ["Record", "WindowCloser"]

# The pipeline's ``record``: commit decisions that did not come from a device message.
Record = Callable[[Sequence[Decision], datetime], Awaitable[object]]


class WindowCloser:
    """Asks the engine every ``every_s`` seconds for the windows that closed and records them."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        record: Record,
        clock: GatewayClock,
        *,
        every_s: float = 1.0,
    ) -> None:
        self._engine = engine  # asked each time: a reload replaces the engine
        self._record = record
        self._clock = clock
        self.every_s = every_s
        self.closed = 0  # windows recorded since start

    async def close_due(self) -> int:
        """Record the windows that closed by now; returns how many."""
        now = self._clock.now()
        # A window closed while the system clock is behind is judged at both times as well.
        decisions = self._engine().flush(now, self._clock.also_at())
        if decisions:
            await self._record(decisions, now)
            self.closed += len(decisions)
        return len(decisions)

    async def run(self) -> None:
        """Until cancelled. A failed commit ends it (and the gateway's TaskGroup), as any
        failure to record does: a summary is never forwarded without its entry."""
        while True:
            await asyncio.sleep(self.every_s)
            await self.close_due()
