"""A forwarder's window (gateway/messages/forwarder.py): how many of its rows may be in flight or
acknowledged and not yet deleted. It bounds what a crash can send twice, and what the recipient's
broker holds unacknowledged."""

from __future__ import annotations

import asyncio

__all__ = ["SendWindow"]


class SendWindow:
    """Room for rows in flight or acknowledged and not yet deleted: a semaphore (one task waits
    on it) whose ``free`` slots ``offer`` may also take without waiting."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._room = asyncio.Event()

    async def take(self) -> None:
        while self.free <= 0:
            self._room.clear()
            await self._room.wait()
        self.free -= 1

    def give(self) -> None:
        self.free += 1
        self._room.set()
