"""Rows a recipient's broker acknowledged, deleted from the outbox together.

PUBACKs of ~20 ms go into one transaction: at 1,000 msg/s (README, "Figures") one delete per ~22
messages, ~3 µs of CPU a message (deleting nothing saved less than the run-to-run spread). Longer
would not help: 20 ms of PUBACKs fill half the window at full speed. A timer armed by the first
PUBACK wakes the deleting task, which sleeps otherwise.

An acknowledged row keeps its place in the forwarder's window until its delete is committed: a
crash before then sends it again, so the window bounds the duplicates a crash can cause. Until
then it is never sent again, and counts as "may have arrived" at the send-time check.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.messages.outbox import Outbox
from gateway.messages.send_window import SendWindow

__all__ = ["DELETE_AFTER_S", "AckedRows"]

log = logging.getLogger(__name__)

# Acknowledged rows are deleted together this long after the first of them.
DELETE_AFTER_S = 0.02


class AckedRows:
    """One recipient's acknowledged rows until their delete commits (see the module text)."""

    def __init__(self, recipient: str, outbox: Outbox, window: SendWindow) -> None:
        self._recipient = recipient
        self._outbox = outbox
        self._window = window
        self._acked: list[int] = []  # not yet in a delete
        # Customer and payload bytes of each row acknowledged until its delete commits (its keys:
        # the rows never to send again): the queue quota counts bytes per customer's share, so
        # what leaves must say whose and how much.
        self._bytes: dict[int, tuple[str, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due = False
        self._wake: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the running one, once run starts

    def __contains__(self, row_id: object) -> bool:
        """Whether the row is acknowledged and its delete not committed (or failed)."""
        return row_id in self._bytes

    def add(self, row_id: int, customer: str, size: int) -> None:
        """The recipient's broker acknowledged the row (its PUBACK)."""
        self._acked.append(row_id)
        self._bytes[row_id] = (customer, size)
        if self._timer is None:
            loop = asyncio.get_running_loop() if self._loop is None else self._loop
            self._timer = loop.call_later(DELETE_AFTER_S, self._time_to_delete)

    def _time_to_delete(self) -> None:
        self._timer = None
        self._due = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Delete acknowledged rows ``DELETE_AFTER_S`` after the first of them; until cancelled."""
        loop = self._loop = asyncio.get_running_loop()
        while True:
            while not self._due:
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
            self._due = False
            ids, self._acked = self._acked, []
            if not ids:  # taken by delete_all at a stop
                continue
            try:
                deleted = await self._outbox.delete(ids, durable=False)
            except Exception:
                # Delivered rows whose delete failed (disk full) are deleted later: they stay
                # marked as delivered, so they are neither sent again nor counted as gone.
                log.exception(
                    "upstream %s: could not delete %d sent rows; retrying",
                    self._recipient,
                    len(ids),
                )
                self._acked[:0] = ids
                await asyncio.sleep(0.5)
                self._due = True
                continue
            for _ in ids:
                self._window.give()
            self._gone(ids, deleted)

    async def delete_all(self) -> None:
        """At shutdown: delete the rows acknowledged but not yet deleted, so a clean restart does
        not send them again. ``_bytes`` holds them all, also those a delete had taken when the
        stop cancelled it mid-commit."""
        self._acked = []
        ids = sorted(self._bytes)
        if not ids:
            return
        try:
            deleted = await self._outbox.delete(ids)
        except Exception:
            log.exception(
                "upstream %s: %d delivered rows stay in the outbox and will be sent again",
                self._recipient,
                len(ids),
            )
            return
        # As after a batched delete: they left the recipient's queue. Counted still, the depth
        # would stay high after every stop (a reload that changes the recipient), and releases
        # would be withheld for a full queue that is not.
        self._gone(ids, deleted)

    def _gone(self, ids: list[int], deleted: set[int]) -> None:
        # Only the rows the delete found: one an erasure took was counted off then.
        left = [b for i in ids if (b := self._bytes.pop(i, None)) and i in deleted]
        self._outbox.gone(self._recipient, left)
