"""The single writer of Einblick's database.

One ``sqlite3`` connection writes; every write is a job, each in its own transaction, one at a
time (an asyncio lock). The pipeline hands it whole batches (log entries and outbox rows together:
invariant 2, no record, no forward), so a busy gateway commits large batches and an idle one
commits single messages at once — group commit without a timer.

A job's Python work (chaining, canonical JSON, inserts into SQLite's page cache) runs on the event
loop thread; only the COMMIT, which waits for the disk (fsync) with the GIL released, runs on a
helper thread (``gateway/messages/handoff.py``) while the loop goes on reading sockets. Running
the whole job on the helper thread instead made the two threads trade the GIL on every SQLite
call: each hand-back waits out the interpreter's 5 ms switch interval while the loop is busy,
which put ~10 ms on the commit stage's p99 at 1,000 msg/s (README, "Where the latency goes").
Rare heavy jobs (an erasure, the scrub after it) pass ``offload=True`` and run whole on the
helper thread, so they do not stall the loop.

The hand-over is not free: submitting to the helper thread and being woken back through the
loop's self-pipe took ~150 µs of CPU per commit here, against ~130 µs for the whole COMMIT on the
loop (a write and an fsync whose wait releases the GIL). It pays only while the disk is slow
enough that the loop has something better to do than wait. So the COMMIT runs on the loop thread
when nothing else waits for the loop (the caller says ``idle=True``: a quiet site, one message per
batch), and when the disk has been fast (``gateway/messages/commit_place.py`` decides, from the
time every durable COMMIT took; measured in the README, Figures, "Night of 2026-12-04"). A
COMMIT on the loop that finds the disk slow holds up reading, acknowledging and answering for as
long as the disk takes, as a quiet site's COMMIT always did.

Readers (TUI, verify, export, status) open their own read-only connections; WAL lets them read
while this one writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from gateway.backoff import Backoff
from gateway.errors import StoreError
from gateway.log.schema import ensure_schema
from gateway.messages.commit_place import CommitPlace
from gateway.messages.handoff import HelperThread

__all__ = [
    "Store",
    "connect",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a write waits for another process holding the database's write lock (an offline
# `einblick` command run beside the gateway) before it fails, and the pipeline fails closed.
BUSY_TIMEOUT_S = 30.0


def _try_begin(conn: sqlite3.Connection, deadline: float) -> bool:
    """BEGIN IMMEDIATE; False if the database is locked by someone else and there is time left."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
            raise
        return False
    return True


@contextlib.contextmanager
def _synchronous(conn: sqlite3.Connection, durable: bool) -> Iterator[None]:
    """``durable=False``: this transaction's COMMIT skips the fsync (synchronous=NORMAL)."""
    if durable:
        yield
        return
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous=FULL")


async def _until_done(future: asyncio.Future[Any]) -> bool:
    """Wait for ``future`` (the helper thread's, pinned: gateway/messages/handoff.py) to finish,
    through any number of cancellations; True if we were cancelled meanwhile (the caller
    re-raises once the work is done). The work's own failure is left in the future."""
    cancelled = False
    while not future.done():
        try:
            await future
        except asyncio.CancelledError as exc:
            # Ours, unless it is the very exception the work raised (then it is the work's).
            if not (future.done() and not future.cancelled() and future.exception() is exc):
                cancelled = True
        except BaseException:  # the work's failure: the caller reads the future
            pass
    return cancelled


def _copy_into(reader: sqlite3.Connection, target: Path) -> None:
    """Copy what ``reader`` sees (its open read transaction) into the new file ``target``."""
    copy = sqlite3.connect(target)
    try:
        reader.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()


def _owner_only(path: Path) -> None:
    """Create ``path`` (and its directory) for the owner alone, or tighten what is there.

    SQLite gives the -wal and -shm files it creates the mode of the database file, so the
    database must be 0600 before the first connection, whatever the umask: it holds personal
    data, pseudonymisation and subject keys."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file made by an older release, or under a looser umask
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def connect(path: Path) -> sqlite3.Connection:
    """Open the database for writing with the settings every writer must use."""
    _owner_only(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the device's message is acknowledged (invariant 3 across
    # a power cut, not only a crash). Measured cost in the README's benchmark.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Erased content must not linger in free pages of the file (invariant 6).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def _timed_commit(conn: sqlite3.Connection) -> float:
    """COMMIT, and how long it took (write and fsync)."""
    started = time.perf_counter()
    conn.execute("COMMIT")
    return time.perf_counter() - started


class Store:
    """Runs write jobs one at a time; the COMMIT's wait for the disk happens off the loop unless
    the disk is fast (``CommitPlace``)."""

    def __init__(
        self,
        path: Path,
        setup: Callable[[sqlite3.Connection], None] = ensure_schema,
        place: CommitPlace | None = None,
    ) -> None:
        """``setup`` runs once on the new connection; by default it creates or upgrades every
        table (``gateway.log.migrations``) and refuses a database from a newer release.
        ``place`` decides where durable COMMITs run (by default as the module text says)."""
        self.place = place or CommitPlace()
        self.path = path
        # Escaped ('#' or '?' in a directory name would cut the path short), and made absolute
        # now, not on the loop later.
        self._read_only_uri = path.absolute().as_uri() + "?mode=ro"
        self._setup = setup
        self._helper = HelperThread("einblick-commit")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self.failures = 0  # consecutive failed transactions; >0 means we are failing closed
        self.last_error: str | None = None

    async def open(self) -> None:
        self._conn = await self._helper.submit(self._open)

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self.path)
            # Never wait inside SQLite: jobs begin on the event loop (see _begin).
            conn.execute("PRAGMA busy_timeout=0")
            self._setup(conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"{self.path}: cannot open the database: {exc} (check that the directory exists, "
                "that this is a file and not a directory, and that the gateway's user may write it)"
            ) from exc
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the database is not open")
        return self._conn

    async def transaction(
        self,
        job: Callable[[sqlite3.Connection], T],
        *,
        on_rollback: Callable[[], None] | None = None,
        on_commit: Callable[[], None] | None = None,
        durable: bool = True,
        offload: bool = False,
        idle: bool = False,
    ) -> T:
        """Run ``job(conn)`` inside BEGIN IMMEDIATE … COMMIT.

        Any failure rolls back, calls ``on_rollback`` (so in-memory state such as chain heads
        can be restored) and raises StoreError saying what the database said. ``on_commit`` runs
        right after COMMIT, before any later job can see the state. ``durable=False`` skips the
        fsync of this commit (the next durable commit carries it to disk): for writes whose loss
        only repeats work, such as deleting rows already sent. ``offload=True`` runs the whole
        job on the helper thread: for long jobs that would otherwise hold up the event loop.
        ``idle=True``: nothing else waits for the loop, so the COMMIT runs on it (module text).
        """
        async with self._lock:
            return await self._transaction_locked(
                job, on_rollback, on_commit, durable, offload, idle=idle
            )

    async def snapshot(
        self,
        target: Path,
        job: Callable[[sqlite3.Connection], T],
        *,
        on_rollback: Callable[[], None] | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> T:
        """Run ``job`` as a transaction, then copy the database as it stood right after that
        commit into ``target`` (a new file), with SQLite's online backup.

        No other write lands between the commit and the copy: a read transaction is opened on a
        second connection while the writer is still held, and WAL keeps that reader's view fixed
        while the gateway goes on writing during the copy (which runs off the loop).
        """
        reader = sqlite3.connect(
            self._read_only_uri, uri=True, check_same_thread=False, isolation_level=None
        )
        try:
            async with self._lock:
                result = await self._transaction_locked(
                    job, on_rollback, on_commit, True, False, idle=False
                )
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pins the view
            await asyncio.to_thread(_copy_into, reader, target)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: snapshot into {target} failed: {exc}") from exc
        finally:
            reader.close()
        return result

    async def _transaction_locked(
        self,
        job: Callable[[sqlite3.Connection], T],
        on_rollback: Callable[[], None] | None,
        on_commit: Callable[[], None] | None,
        durable: bool,
        offload: bool,
        *,
        idle: bool,
    ) -> T:
        if offload:
            return await self._offloaded(
                functools.partial(self._run_whole, job, on_rollback, on_commit, durable)
            )
        conn = self._connection()
        with _synchronous(conn, durable):
            with self._rolled_back_on_error(conn, on_rollback):
                await self._begin(conn)
                result = job(conn)
            error: BaseException | None = None
            cancelled = False
            if not durable:
                # Nothing to wait for: without the fsync a WAL COMMIT only writes its pages to
                # the OS.
                try:
                    conn.execute("COMMIT")
                except Exception as exc:  # as the helper thread's failure is handled below
                    error = exc
            elif idle or self.place.inline():
                # Nothing else waits for the loop, or the disk has been fast (module text).
                try:
                    self.place.timed(_timed_commit(conn), inline=True)
                except Exception as exc:  # as the helper thread's failure is handled below
                    self.place.failed(inline=True)
                    error = exc
            else:
                commit = self._helper.submit(functools.partial(_timed_commit, conn), pinned=True)
                cancelled = await _until_done(commit)
                error = commit.exception()
                if error is None:
                    self.place.timed(commit.result(), inline=False)
                else:
                    self.place.failed(inline=False)
            if error is not None:
                self._fail(conn, on_rollback, error)
                failure = StoreError(f"{self.path}: write failed: {error}")
                if cancelled:  # the caller is going away: it must not retry for ever
                    raise asyncio.CancelledError from failure
                raise failure from error
            if on_commit is not None:
                on_commit()
            if cancelled:
                raise asyncio.CancelledError
        self._succeeded()
        return result

    def _run_whole(
        self,
        job: Callable[[sqlite3.Connection], T],
        on_rollback: Callable[[], None] | None,
        on_commit: Callable[[], None] | None,
        durable: bool,
    ) -> T:
        conn = self._connection()
        with _synchronous(conn, durable):
            with self._rolled_back_on_error(conn, on_rollback):
                deadline = time.monotonic() + BUSY_TIMEOUT_S
                while not _try_begin(conn, deadline):
                    time.sleep(0.01)
                result = job(conn)
                conn.execute("COMMIT")
            if on_commit is not None:
                on_commit()
        self._succeeded()
        return result

    @contextlib.contextmanager
    def _rolled_back_on_error(
        self, conn: sqlite3.Connection, on_rollback: Callable[[], None] | None
    ) -> Iterator[None]:
        """Any failure inside rolls back and calls ``on_rollback``; database and disk errors
        come out as StoreError naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            self._fail(conn, on_rollback, exc)
            raise StoreError(f"{self.path}: write failed: {exc}") from exc
        except BaseException:
            self._roll_back(conn, on_rollback, None)
            raise

    def _succeeded(self) -> None:
        self.failures = 0
        self.last_error = None

    async def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE without blocking the loop: the connection never waits inside SQLite
        (busy_timeout 0); while another process holds the write lock we retry, sleeping."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        if _try_begin(conn, deadline):
            return
        backoff = Backoff(0.002, 0.1)  # only when the lock is taken: nothing on the usual path
        while True:
            await backoff.sleep()
            if _try_begin(conn, deadline):
                return

    async def _offloaded(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the helper thread; however often we are cancelled meanwhile, we wait
        for it to end first, because the connection must not be touched while it runs."""
        future = self._helper.submit(work, pinned=True)
        if await _until_done(future):
            raise asyncio.CancelledError
        return future.result()

    def _fail(
        self, conn: sqlite3.Connection, on_rollback: Callable[[], None] | None, exc: BaseException
    ) -> None:
        self.failures += 1
        self.last_error = str(exc)
        self._roll_back(conn, on_rollback, exc)

    def _roll_back(
        self,
        conn: sqlite3.Connection,
        on_rollback: Callable[[], None] | None,
        exc: BaseException | None,
    ) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed after %s", exc)
        if on_rollback is not None:
            try:
                on_rollback()
            except (sqlite3.Error, OSError):
                # The disk failed the reading back too. The failure on its way out (the write's,
                # a cancellation) is the one the caller must see; the log writer reads its state
                # again before it next writes (``LogWriter.rolled_back``).
                log.exception("%s: reading the state back after a rollback failed", self.path)

    async def read(self, query: Callable[[sqlite3.Connection], T], *, offload: bool = False) -> T:
        """Run a read on the writer's connection: it sees every committed write, in order.
        ``offload=True`` runs it on the helper thread (long scans, start-up loads)."""
        async with self._lock:
            if offload:
                return await self._offloaded(functools.partial(self._read, query))
            return self._read(query)

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return query(self._connection())
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from exc

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()
        self._helper.close()
        if self.place.on_loop or self.place.on_helper:
            log.info(
                "%s closed: %d durable commits ran on the event loop, %d on the helper thread "
                "(the helper takes them while the disk's fsync is slower than %.1f ms)",
                self.path,
                self.place.on_loop,
                self.place.on_helper,
                self.place.slow_s * 1000,
            )
