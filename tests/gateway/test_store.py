"""The single writer against a real SQLite file: commit, rollback, a COMMIT that fails,
cancellation while the COMMIT waits for the disk, and jobs offloaded to the helper thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.messages.commit_place import CommitPlace
from gateway.messages.store import Store


def _schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS child (
            id INTEGER PRIMARY KEY,
            parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED
        );
        """
    )


def _rows(path: Path, table: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]
    finally:
        conn.close()


async def _open(tmp_path: Path) -> Store:
    store = Store(tmp_path / "db.sqlite", _schema)
    await store.open()
    return store


async def test_a_committed_job_is_visible_to_other_connections_and_on_commit_runs(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    events: list[str] = []
    result = await store.transaction(
        lambda conn: conn.execute("INSERT INTO parent VALUES (1)").lastrowid,
        on_commit=lambda: events.append("commit"),
        on_rollback=lambda: events.append("rollback"),
    )
    assert result == 1
    assert events == ["commit"]
    assert _rows(store.path, "parent") == [1]
    await store.close()


async def test_a_failing_job_rolls_back_everything_and_says_what_the_database_said(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    events: list[str] = []

    def job(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO parent VALUES (1)")  # duplicate key

    with pytest.raises(StoreError, match=r"db\.sqlite: write failed: UNIQUE constraint"):
        await store.transaction(job, on_rollback=lambda: events.append("rollback"))
    assert events == ["rollback"]
    assert store.failures == 1 and "UNIQUE" in (store.last_error or "")
    assert _rows(store.path, "parent") == []
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (2)"))
    assert store.failures == 0 and store.last_error is None
    assert _rows(store.path, "parent") == [2]
    await store.close()


async def test_a_commit_that_fails_rolls_back_and_raises_instead_of_crashing(
    tmp_path: Path,
) -> None:
    """A deferred foreign key is checked only at COMMIT, on the helper thread: the error must
    come back as a StoreError (the pipeline then fails closed) with the job rolled back."""
    store = await _open(tmp_path)
    events: list[str] = []
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"),
            on_commit=lambda: events.append("commit"),
            on_rollback=lambda: events.append("rollback"),
        )
    assert events == ["rollback"]
    assert _rows(store.path, "child") == []
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (99)"))
    await store.transaction(lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"))
    assert _rows(store.path, "child") == [1]
    await store.close()


async def test_a_rollback_whose_reading_back_fails_raises_the_writes_own_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk failing the reading back after a failed write (``on_rollback``: the log writer
    reloads its heads): the caller still gets the write's StoreError, so the pipeline fails
    closed and retries, and the second failure is logged, not lost."""
    store = await _open(tmp_path)

    def reading_fails() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(StoreError, match="write failed: FOREIGN KEY constraint failed"):
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"),
            on_rollback=reading_fails,
        )
    assert "reading the state back after a rollback failed" in caplog.text
    assert "disk I/O error" in caplog.text
    assert store.failures == 1 and "FOREIGN KEY" in (store.last_error or "")
    assert _rows(store.path, "child") == []
    await store.close()


async def test_cancelled_while_committing_the_commit_completes_before_anyone_goes_on(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    events: list[str] = []
    started = asyncio.Event()

    async def write() -> None:
        started.set()
        await store.transaction(
            lambda conn: conn.executemany(
                "INSERT INTO parent VALUES (?)", [(i,) for i in range(5000)]
            ),
            on_commit=lambda: events.append("commit"),
        )

    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(write())
        await started.wait()
        await asyncio.sleep(0)  # the job ran on the loop; the COMMIT is now on the helper thread
        task.cancel()
    assert task.cancelled()
    # The data is in and on_commit ran: what the chain heads say matches the file.
    assert events == ["commit"]
    assert len(_rows(store.path, "parent")) == 5000
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (-1)"))
    assert len(_rows(store.path, "parent")) == 5001
    await store.close()


async def test_offloaded_jobs_and_reads_run_off_the_loop_thread_with_the_same_guarantees(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    loop_thread = threading.get_ident()

    def job(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO parent VALUES (7)")
        return threading.get_ident()

    assert await store.transaction(job, offload=True) != loop_thread
    assert await store.read(lambda conn: threading.get_ident(), offload=True) != loop_thread
    assert await store.read(lambda conn: threading.get_ident()) == loop_thread
    assert _rows(store.path, "parent") == [7]
    events: list[str] = []
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO child VALUES (1, 42)"),
            on_rollback=lambda: events.append("rollback"),
            offload=True,
        )
    assert events == ["rollback"] and _rows(store.path, "child") == []
    with pytest.raises(StoreError, match="read failed: no such table"):
        await store.read(lambda conn: conn.execute("SELECT * FROM nowhere").fetchall())
    await store.close()


async def test_cancelled_twice_an_offloaded_job_still_finishes_before_the_lock_is_free(
    tmp_path: Path,
) -> None:
    """Ctrl-C twice: each signal cancels again. The helper thread must be done with the
    connection before anyone else may use it."""
    store = await _open(tmp_path)
    events: list[str] = []
    started = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        conn.execute("INSERT INTO parent VALUES (1)")
        time.sleep(0.3)

    async def write() -> None:
        await store.transaction(slow, on_commit=lambda: events.append("commit"), offload=True)

    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(write())
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()
    assert task.cancelled()
    assert events == ["commit"] and _rows(store.path, "parent") == [1]
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (2)"))
    assert _rows(store.path, "parent") == [1, 2]
    await store.close()


async def test_a_failing_commit_while_cancelled_ends_in_cancellation_not_a_retry(
    tmp_path: Path,
) -> None:
    """The pipeline retries StoreErrors for ever (fail closed); a gateway being stopped must
    get its cancellation, or SIGTERM would not stop it while the disk is failing."""
    store = await _open(tmp_path)
    events: list[str] = []

    async def write() -> None:
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"),
            on_rollback=lambda: events.append("rollback"),
        )

    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(write())
        await asyncio.sleep(0)  # the job ran; the failing COMMIT is on the helper thread
        task.cancel()
    assert task.cancelled()
    assert events == ["rollback"] and _rows(store.path, "child") == []
    await store.close()


async def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await _open(tmp_path)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an offline command holding the write lock
    ticks = 0
    ticked = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks == 20:
                ticked.set()
            await asyncio.sleep(0.01)

    async with asyncio.TaskGroup() as tasks:
        write = tasks.create_task(
            store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (5)"))
        )
        tick = tasks.create_task(ticker())
        # The event: the loop ticked 20 times while the write waited for the lock. Were the
        # wait blocking the loop, the ticks would come only after the write had failed.
        async with asyncio.timeout(30):
            await ticked.wait()
        assert not write.done()
        other.execute("COMMIT")
        await write
        tick.cancel()
    assert _rows(store.path, "parent") == [5]
    # Held for longer than the gateway waits: a clear error (the pipeline then fails closed).
    monkeypatch.setattr("gateway.messages.store.BUSY_TIMEOUT_S", 0.3)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="write failed: database is locked"):
        await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (6)"))
    with pytest.raises(StoreError, match="write failed: database is locked"):
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO parent VALUES (6)"), offload=True
        )
    other.execute("ROLLBACK")
    other.close()
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (7)"))
    assert _rows(store.path, "parent") == [5, 7]
    await store.close()


async def test_an_idle_commit_runs_on_the_loop_thread_and_a_busy_one_on_the_helper(
    tmp_path: Path,
) -> None:
    """``idle=True`` (nothing waits for the loop) saves the hand-over: the COMMIT runs on the
    loop's own thread; otherwise it runs on the helper thread while the loop goes on."""
    store = await _open(tmp_path)
    threads: dict[str, int] = {}
    conn = store._connection()
    conn.set_trace_callback(lambda sql: threads.update({sql: threading.get_ident()}))
    await store.transaction(lambda c: c.execute("INSERT INTO parent VALUES (1)"), idle=True)
    assert threads["COMMIT"] == threading.get_ident()
    await store.transaction(lambda c: c.execute("INSERT INTO parent VALUES (2)"))
    assert threads["COMMIT"] != threading.get_ident()
    assert _rows(store.path, "parent") == [1, 2]
    await store.close()


async def test_durable_commits_run_on_the_loop_once_the_disk_has_been_fast(
    tmp_path: Path,
) -> None:
    """With every COMMIT counted fast (limit 10 s), the first two are timed on the helper thread
    and the ones after run on the loop's own thread; with none fast (limit 0), none ever do."""
    for slow_s, loop_from in ((10.0, 2), (0.0, None)):
        store = Store(tmp_path / f"db{slow_s}.sqlite", _schema, CommitPlace(slow_s, 2))
        await store.open()
        threads: list[int] = []

        def traced(sql: str, threads: list[int] = threads) -> None:
            if sql == "COMMIT":
                threads.append(threading.get_ident())

        store._connection().set_trace_callback(traced)
        for i in range(4):

            def insert(conn: sqlite3.Connection, i: int = i) -> None:
                conn.execute("INSERT INTO parent VALUES (?)", (i,))

            await store.transaction(insert)
        on_loop = [t == threading.get_ident() for t in threads]
        expected = [loop_from is not None and i >= loop_from for i in range(4)]
        assert on_loop == expected, slow_s
        assert (store.place.on_loop, store.place.on_helper) == (sum(expected), 4 - sum(expected))
        assert _rows(store.path, "parent") == [0, 1, 2, 3]
        await store.close()


async def test_an_idle_commit_that_fails_rolls_back_and_raises_like_a_busy_one(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    events: list[str] = []
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        await store.transaction(
            lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"),
            on_commit=lambda: events.append("commit"),
            on_rollback=lambda: events.append("rollback"),
            idle=True,
        )
    assert events == ["rollback"]
    assert _rows(store.path, "child") == []
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (99)"), idle=True)
    await store.transaction(
        lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"), idle=True
    )
    assert _rows(store.path, "child") == [1]
    await store.close()


async def test_a_commit_without_fsync_runs_on_the_loop_thread(tmp_path: Path) -> None:
    """``durable=False`` (synchronous=NORMAL): the COMMIT only writes WAL pages to the OS, with
    nothing to wait for, so it is not handed to the helper thread; the next durable commit is."""
    store = await _open(tmp_path)
    threads: dict[str, int] = {}
    syncs: list[str] = []
    conn = store._connection()

    def trace(sql: str) -> None:
        threads[sql] = threading.get_ident()
        if sql.startswith("PRAGMA synchronous"):
            syncs.append(sql)

    conn.set_trace_callback(trace)
    await store.transaction(lambda c: c.execute("INSERT INTO parent VALUES (1)"), durable=False)
    assert threads["COMMIT"] == threading.get_ident()
    assert syncs == ["PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"]
    await store.transaction(lambda c: c.execute("INSERT INTO parent VALUES (2)"))
    assert threads["COMMIT"] != threading.get_ident()
    assert _rows(store.path, "parent") == [1, 2]
    await store.close()


async def test_a_commit_that_fails_on_the_loop_sends_the_next_ones_to_the_helper(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "db.sqlite", _schema, CommitPlace(10.0, 1))
    await store.open()
    await store.transaction(lambda conn: conn.execute("INSERT INTO parent VALUES (1)"))
    assert store.place.inline()
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        await store.transaction(lambda conn: conn.execute("INSERT INTO child VALUES (1, 99)"))
    assert not store.place.inline()
    assert (store.place.on_loop, store.place.on_helper) == (1, 1)
    await store.close()
