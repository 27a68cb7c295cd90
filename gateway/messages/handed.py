"""Which outbox rows an earlier run may have handed to a recipient's connection, kept across
restarts, so what a withheld row's entry says of an earlier attempt is precise.

A row still in the outbox when its forwarder is made may have been published by an earlier run
whose acknowledgement never came (MQTT QoS 1 is at-least-once): withheld later, its entry must
not say the recipient received nothing (gateway/messages/sendtime_text.py, MAYBE_SENT). Without
a record every such row counts, also those queued while the recipient was away for the whole
previous run, which certainly never left.

So each recipient holds a *lease* (``handed.json`` beside the database): an outbox id up to which
its forwarder may hand rows to the connection. It is written, durably, before a row above it is
handed, reaching ahead by as many ids as make a write every few seconds at the current rate, not
one per message. At the next start, a row of the recipient above its lease was certainly never handed
over; one at or below it may have been. Rows up to the outbox's highest id when the file was
first written (``floor``: handed by a version without this record) count as maybe handed.

A lease that cannot be written (a full disk) is not risked: the file is removed, and from then
on every row present at a start counts as maybe handed, as without the record, until a start
writes it anew. If the file cannot be removed either, rows above the lease wait: ``cover``
raises ``HandedError``, and the forwarder tries again as after a database refusing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import StoreError

__all__ = ["LEASE_AHEAD", "LEASE_EVERY_S", "LEASE_MOST", "HandedError", "HandedMarks", "Lease"]

log = logging.getLogger(__name__)

# Ids a lease reaches beyond the highest outbox id when it is written: from ``LEASE_AHEAD``,
# doubled when the last write of that lease was less than ``LEASE_EVERY_S`` ago (up to
# ``LEASE_MOST``), halved back when it was more than four times that: ids are shared by all
# recipients, and at 1,000 messages a second to three recipients a fixed reach of 64 would mean
# dozens of writes a second; this way one every two to eight seconds. A row queued within the reach after a recipient's last handing counts as maybe handed
# at the next start: a quiet site's reach stays small.
LEASE_AHEAD = 64
LEASE_MOST = 1 << 20
LEASE_EVERY_S = 2.0


class HandedError(StoreError):
    """The record can be neither written nor removed: rows above a lease wait."""

    what = "the record of rows handed to recipients"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    floor: int  # the outbox's highest id when the record began: all before it maybe handed
    leases: dict[str, int]  # recipient -> the id up to which its forwarder may hand rows


class HandedMarks:
    """The leases of every recipient; one owner of ``handed.json``."""

    def __init__(self, path: Path | None, highest_id: int) -> None:
        """``highest_id``: the outbox's highest id at start (``Outbox.last_id``). ``path`` None:
        nothing is kept; every row present at a start counts as maybe handed."""
        self._path = path
        self._record = _Record(floor=highest_id, leases={})
        self._kept = path is not None
        self._lock = asyncio.Lock()  # one extension at a time; a cancelled one finishes first
        self._writing = threading.Lock()  # one write at a time, also from a finishing thread
        # recipient -> (ids its lease reaches ahead, monotonic time of its last write)
        self._ahead: dict[str, tuple[int, float]] = {}
        if path is None:
            return
        try:
            self._record = _Record.model_validate_json(path.read_bytes())
            return
        except FileNotFoundError:
            pass  # from now on, what is handed is recorded
        except (OSError, ValidationError) as exc:
            log.warning(
                "%s cannot be read (%s): every row queued before this start counts as maybe "
                "delivered already; the record starts anew",
                path,
                exc,
            )
        try:
            self._write_now(self._record)
        except OSError as exc:
            try:
                self._give_up(exc)
            except HandedError as stuck:
                # Every row there counts (``floor``); rows above it wait until it can be written.
                log.error("%s", stuck)

    def earlier(self, recipient: str, highest_id: int) -> int:
        """The highest id of ``recipient``'s rows (up to ``highest_id``, the outbox's highest
        now) an earlier attempt may have handed over; rows above it certainly were not."""
        if not self._kept:
            return highest_id
        lease = max(self._record.floor, self._record.leases.get(recipient, 0))
        return min(lease, highest_id)

    def lease(self, recipient: str) -> Lease:
        return Lease(self, recipient)

    def up_to(self, recipient: str) -> int | None:
        """The id up to which rows may be handed without writing; None: no lease is needed."""
        return self._record.leases.get(recipient, 0) if self._kept else None

    async def extend(self, recipient: str, row_id: int, highest_id: int) -> None:
        """Let ``recipient``'s rows up to ``row_id`` be handed over, written durably first."""
        async with self._lock:
            current = self.up_to(recipient)
            if current is None or row_id <= current:
                return  # written meanwhile, or no longer kept
            ahead, written = self._ahead.get(recipient, (LEASE_AHEAD, -LEASE_EVERY_S))
            now = time.monotonic()
            if now - written < LEASE_EVERY_S:
                ahead = min(LEASE_MOST, ahead * 2)
            elif now - written > 4 * LEASE_EVERY_S:
                ahead = max(LEASE_AHEAD, ahead // 2)
            self._ahead[recipient] = (ahead, now)
            reach = max(row_id, highest_id) + ahead
            job = asyncio.get_running_loop().run_in_executor(None, self._raise, recipient, reach)
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                # The thread goes on: the lock is held until it is done, so no other write
                # overtakes it (its caller, a forwarder being stopped, learns nothing of it).
                await asyncio.wait([job])
                raise

    def _raise(self, recipient: str, reach: int) -> None:
        """In a helper thread, one at a time: the record with ``recipient``'s lease at least
        ``reach``, written; or, if it cannot be, given up (``_give_up``)."""
        with self._writing:
            leases = dict(self._record.leases)
            leases[recipient] = max(reach, leases.get(recipient, 0))  # a lease never goes down
            try:
                self._write_now(self._record.model_copy(update={"leases": leases}))
            except OSError as exc:
                self._give_up(exc)

    def _write_now(self, record: _Record) -> None:
        assert self._path is not None
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:  # writes it all, or raises
            handle.write(record.model_dump_json().encode())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self._path)
        self._sync_directory()
        self._record = record

    def _sync_directory(self) -> None:
        assert self._path is not None
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _give_up(self, exc: OSError) -> None:
        """The lease cannot be written: remove the record, durably (a start without it counts
        every row as maybe handed), or, if that fails too, raise: rows above the lease wait."""
        assert self._path is not None
        try:
            self._path.unlink(missing_ok=True)
            self._sync_directory()  # else a power cut could bring the old record back
        except OSError as second:
            raise HandedError(
                f"{self._path}, the record of which rows were handed to recipients, can be "
                f"neither written ({exc.strerror}) nor removed ({second.strerror}); check the "
                "disk of the data directory"
            ) from second
        self._kept = False
        log.warning(
            "%s cannot be written (%s) and is removed: after a restart, every row queued before "
            "it counts as maybe delivered already",
            self._path,
            exc,
        )


class Lease:
    """One recipient's part of ``HandedMarks``, as its forwarder uses it."""

    def __init__(self, marks: HandedMarks, recipient: str) -> None:
        self._marks = marks
        self._recipient = recipient

    def earlier(self, highest_id: int) -> int:
        return self._marks.earlier(self._recipient, highest_id)

    def covers(self, row_id: int) -> bool:
        """Whether the row may be handed over now without writing first."""
        reach = self._marks.up_to(self._recipient)
        return reach is None or row_id <= reach

    async def cover(self, row_id: int, highest_id: int) -> None:
        """Write the lease first if ``row_id`` is above it (``HandedError``: it cannot be)."""
        if not self.covers(row_id):
            await self._marks.extend(self._recipient, row_id, highest_id)
