"""The single writer of Einblick's database.

One thread owns the one ``sqlite3`` connection that writes; every write is a job run there, each
job in its own transaction. The pipeline hands it whole batches (log entries and outbox rows
together: invariant 2, no record, no forward), so a busy gateway commits large batches and an
idle one commits single messages at once — group commit without a timer. SQLite releases the GIL
while it works, so the commit overlaps with the next batch being decided on the event loop.

Readers (TUI, verify, export, status) open their own read-only connections; WAL lets them read
while this one writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.errors import StoreError

__all__ = ["Store", "connect"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(path: Path) -> sqlite3.Connection:
    """Open the database for writing with the settings every writer must use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the device's message is acknowledged (invariant 3 across
    # a power cut, not only a crash). Measured cost in the README's benchmark.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Erased content must not linger in free pages of the file (invariant 6).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class Store:
    """Runs write jobs, one transaction each, on the thread that owns the connection."""

    def __init__(self, path: Path, setup: Callable[[sqlite3.Connection], None]) -> None:
        self.path = path
        self._setup = setup
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="einblick-writer")
        self._conn: sqlite3.Connection | None = None
        self.failures = 0  # consecutive failed transactions; >0 means we are failing closed
        self.last_error: str | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, self._open)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path)
        self._setup(conn)
        return conn

    async def transaction(
        self,
        job: Callable[[sqlite3.Connection], T],
        *,
        on_rollback: Callable[[], None] | None = None,
        on_commit: Callable[[], None] | None = None,
        durable: bool = True,
    ) -> T:
        """Run ``job(conn)`` inside BEGIN IMMEDIATE … COMMIT on the writer thread.

        ``durable=False`` skips the fsync of this commit (the next durable commit carries it to
        disk): for writes whose loss only repeats work, such as deleting rows already sent.

        Any failure rolls back, calls ``on_rollback`` (so in-memory state such as chain heads
        can be restored) and raises StoreError saying what the database said.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._run, job, on_rollback, on_commit, durable
        )

    def _run(
        self,
        job: Callable[[sqlite3.Connection], T],
        on_rollback: Callable[[], None] | None,
        on_commit: Callable[[], None] | None,
        durable: bool = True,
    ) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError(f"{self.path}: the database is not open")
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = job(conn)
            conn.execute("COMMIT")
            if on_commit is not None:
                on_commit()
        except (sqlite3.Error, OSError) as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed after %s", exc)
            if on_rollback is not None:
                on_rollback()
            self.failures += 1
            self.last_error = str(exc)
            raise StoreError(f"{self.path}: write failed: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if on_rollback is not None:
                on_rollback()
            raise
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        self.failures = 0
        self.last_error = None
        return result

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the writer's connection: it sees every committed write, in order."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, query)

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StoreError(f"{self.path}: the database is not open")
        try:
            return query(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
