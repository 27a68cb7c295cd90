"""Signing the logs: every interval, on request (before a backup or an export), and at shutdown.

A checkpoint is signed only when entries were written since the last one (or when forced); a
snapshot for a backup copies the database right after its signature, so every entry in the copy
is covered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from gateway.errors import GatewayError
from gateway.log.writer import LogWriter
from gateway.messages.store import Store

__all__ = ["Checkpoints"]

log = logging.getLogger(__name__)


class Checkpoints:
    """When the logs were last signed, and the loop that signs them."""

    def __init__(
        self,
        store: Store,
        writer: Callable[[], LogWriter],
        *,
        clock: Callable[[], datetime],
        interval_s: Callable[[], float],
        signed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._clock = clock
        self._signed_hook = signed  # told after each signature (the witnesses' submitter)
        self._interval_s = interval_s  # read each time: a reload may change it
        self.last_signed = 0.0  # wall time of the last signature; 0: none in this run

    async def sign(self, *, force: bool = False, snapshot: Path | None = None) -> None:
        """Sign every log with new entries (all, if forced); with ``snapshot``, also copy the
        database as it stands right after this signature into that new file."""
        writer = self._writer()
        # The writer knows which logs grew since their last signature; nothing new, nothing
        # to sign (unless forced: before an export, a backup, at shutdown).
        if not force and snapshot is None and writer.unsigned() == 0:
            return
        now = self._clock()
        if snapshot is None:
            await self._store.transaction(
                lambda conn: writer.checkpoint(now),
                on_rollback=writer.rolled_back,
                on_commit=writer.committed,
            )
        else:
            await self._store.snapshot(
                snapshot,
                lambda conn: writer.checkpoint(now),
                on_rollback=writer.rolled_back,
                on_commit=writer.committed,
            )
        self.last_signed = time.time()
        self._signed_hook()

    def age_s(self) -> float | None:
        """Seconds since the last signature (None: none in this run), for status."""
        return time.time() - self.last_signed if self.last_signed else None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s())
            try:
                await self.sign()
            except GatewayError as exc:
                log.error("checkpoint failed (entries stay unsigned until the next one): %s", exc)
