"""Which outbox rows an earlier run may have handed to a recipient (gateway/messages/handed.py):
a lease written before a row above it is handed, read at the next start."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.errors import StoreError
from gateway.messages import handed
from gateway.messages.handed import LEASE_AHEAD, HandedMarks


async def test_rows_above_a_recipients_lease_were_never_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "handed.json"
    # The first start with the record: every row there (up to 40) may have been handed over by
    # a version without it.
    marks = HandedMarks(path, highest_id=40)
    assert orjson.loads(path.read_bytes()) == {"floor": 40, "leases": {}}
    assert marks.earlier("wartung", 40) == 40
    lease = marks.lease("wartung")
    assert not lease.covers(41)
    await lease.cover(45, highest_id=50)  # written before row 45 is handed over
    assert lease.covers(50 + LEASE_AHEAD) and not lease.covers(51 + LEASE_AHEAD)
    assert orjson.loads(path.read_bytes())["leases"] == {"wartung": 50 + LEASE_AHEAD}
    # The next start, the outbox now reaching id 10,000: "wartung" may have had rows up to its
    # lease handed over; "stadtwerke" (away all along) none after the floor.
    again = HandedMarks(path, highest_id=10_000)
    assert again.earlier("wartung", 10_000) == 50 + LEASE_AHEAD
    assert again.earlier("stadtwerke", 10_000) == 40
    assert again.earlier("wartung", 60) == 60  # never above what the outbox holds


async def test_a_busy_recipient_writes_its_lease_seldom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease written again within ``LEASE_EVERY_S`` reaches twice as far; one written after a
    longer pause half as far again (down to ``LEASE_AHEAD``)."""
    clock = [100.0]
    monkeypatch.setattr(handed.time, "monotonic", lambda: clock[0])
    marks = HandedMarks(tmp_path / "handed.json", highest_id=0)
    lease = marks.lease("wartung")
    reaches: list[int | None] = []
    written: list[float] = []
    for row in range(1, 100_000):
        if not lease.covers(row):
            await lease.cover(row, highest_id=row)
            reaches.append(marks.up_to("wartung"))
            written.append(clock[0])
        clock[0] += 0.001  # 1,000 rows a second
    gaps = [b - a for a, b in itertools.pairwise(written[10:])]
    assert gaps and all(handed.LEASE_EVERY_S <= gap <= 4 * handed.LEASE_EVERY_S for gap in gaps)
    assert len(written) < 60  # 100 s of rows: not one write per 64 rows (1,560)
    clock[0] += 60.0  # quiet for a minute: the reach shrinks again
    await lease.cover(200_000, highest_id=200_000)
    first, before, last = marks.up_to("wartung"), reaches[-2], reaches[-1]
    assert first is not None and before is not None and last is not None
    assert first - 200_000 < last - before


async def test_a_record_that_cannot_be_read_counts_every_row_there_as_maybe_handed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "handed.json"
    path.write_bytes(b'{"floor": "not a number"')
    with caplog.at_level(logging.WARNING):
        marks = HandedMarks(path, highest_id=7)
    assert "cannot be read" in caplog.text and str(path) in caplog.text
    assert marks.earlier("wartung", 7) == 7
    assert orjson.loads(path.read_bytes()) == {"floor": 7, "leases": {}}  # begun anew


async def test_a_lease_that_cannot_be_written_is_not_risked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk: the record is removed, so a restart counts every row as maybe handed (never
    "certainly not" for a row handed over above a lease that was not written)."""
    path = tmp_path / "handed.json"
    marks = HandedMarks(path, highest_id=10)
    lease = marks.lease("wartung")

    def full(_record: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(marks, "_write_now", full)
    with caplog.at_level(logging.WARNING):
        await lease.cover(11, highest_id=11)
    assert not path.exists() and "is removed" in caplog.text
    assert lease.covers(1_000_000)  # nothing kept: no lease needed any more
    assert HandedMarks(path, highest_id=30).earlier("wartung", 30) == 30


async def test_a_record_that_can_be_neither_written_nor_removed_holds_rows_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "handed.json"
    marks = HandedMarks(path, highest_id=10)
    lease = marks.lease("wartung")

    def full(_record: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    def refused(_self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(marks, "_write_now", full)
    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(StoreError, match=r"can be neither written .* nor removed"):
        await lease.cover(11, highest_id=11)
    assert not lease.covers(11)  # the forwarder waits and tries again


def test_without_a_record_every_row_there_counts() -> None:
    marks = HandedMarks(None, highest_id=0)
    assert marks.earlier("wartung", 99) == 99
    assert marks.lease("wartung").covers(10**9)


async def test_a_write_cancelled_midway_finishes_before_another_and_no_lease_goes_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forwarder stopped (a reload) while its lease is being written: the write goes on in
    its thread, and another recipient's write waits for it and keeps it (before, the second
    write was built from the record without the first and replaced it on disk)."""
    path = tmp_path / "handed.json"
    marks = HandedMarks(path, highest_id=0)
    slow = threading.Event()
    started = threading.Event()
    write = marks._write_now

    def held(record: Any) -> None:
        if "x" in record.leases and not slow.is_set():
            started.set()
            slow.wait(5)
        write(record)

    monkeypatch.setattr(marks, "_write_now", held)
    async with asyncio.TaskGroup() as tasks:
        x = tasks.create_task(marks.lease("x").cover(100, highest_id=100), name="x")
        await asyncio.to_thread(started.wait, 5)
        x.cancel()
        y = tasks.create_task(marks.lease("y").cover(200, highest_id=200), name="y")
        await asyncio.sleep(0)  # y waits for x's thread, whose caller is gone
        assert not y.done()
        slow.set()
    leases = orjson.loads(path.read_bytes())["leases"]
    assert leases["x"] >= 100 and leases["y"] >= 200
    assert marks.lease("x").covers(100) and marks.lease("y").covers(200)


def test_a_record_neither_writable_nor_removable_at_start_lets_the_gateway_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory where the file should be: every row there counts, rows above wait."""
    path = tmp_path / "handed.json"
    path.mkdir()
    with caplog.at_level(logging.ERROR):
        marks = HandedMarks(path, highest_id=5)
    assert "can be neither written" in caplog.text
    assert marks.earlier("wartung", 5) == 5
    assert not marks.lease("wartung").covers(6)


def test_a_lease_never_goes_down(tmp_path: Path) -> None:
    """Two writes finishing out of order (a cancelled one's thread last) keep the higher."""
    marks = HandedMarks(tmp_path / "handed.json", highest_id=0)
    marks._raise("wartung", 100)
    marks._raise("wartung", 50)
    assert marks.up_to("wartung") == 100
    assert orjson.loads((tmp_path / "handed.json").read_bytes())["leases"] == {"wartung": 100}


async def test_a_removal_that_cannot_be_made_durable_holds_rows_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed but not synced, a power cut could bring the old record back, whose lease is below
    rows handed over since: so the rows wait, as when it cannot be removed at all."""
    path = tmp_path / "handed.json"
    marks = HandedMarks(path, highest_id=10)

    def full(_record: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def unsynced() -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(marks, "_write_now", full)
    monkeypatch.setattr(marks, "_sync_directory", unsynced)
    with pytest.raises(StoreError, match="can be neither written") as caught:
        await marks.lease("wartung").cover(11, highest_id=11)
    assert caught.value.what == "the record of rows handed to recipients"  # the log line's words
    assert not marks.lease("wartung").covers(11)
