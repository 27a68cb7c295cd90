"""The reader for asyncio: every call on the reader's own thread, never on the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from gateway.errors import LogError
from gateway.log.reader import LogReader
from tests.log.conftest import T0, Log
from tests.log.filled import OTHER, C, fill


async def test_calls_run_on_the_readers_own_thread(log: Log) -> None:
    fill(log)
    reader = await LogReader.open(log.path)
    try:
        loop_thread = threading.current_thread().name
        name = await reader.run(lambda: threading.current_thread().name)
        assert name.startswith("einblick-log-reader") and name != loop_thread
        assert await reader.latest_seq() == 44
        assert [r.seq for r in await reader.page(limit=3)] == [44, 43, 42]
        assert await reader.count(customer=C) == 24
        assert (await reader.get(2)).row.customer == C
        assert reader.origin == reader.sync.origin
    finally:
        await reader.close()


async def test_stats_for_one_customer_from_an_unbound_reader(log: Log) -> None:
    fill(log)
    reader = await LogReader.open(log.path)
    try:
        assert sum((await reader.stats(T0, customer=OTHER)).outcomes.values()) == 20
    finally:
        await reader.close()


async def test_a_bound_reader_asked_for_another_customer_gets_nothing(log: Log) -> None:
    fill(log)
    reader = await LogReader.open(log.path, customer=C)
    try:
        assert sum((await reader.stats(T0, customer=OTHER)).outcomes.values()) == 0
        assert await reader.checkpoints(customer=OTHER) == []
    finally:
        await reader.close()


def _reader_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("einblick-log-reader")}


async def test_opening_nothing_fails_and_leaves_no_thread(tmp_path: Path) -> None:
    before = _reader_threads()
    with pytest.raises(LogError, match="no log database here"):
        await LogReader.open(tmp_path / "absent.db")
    # The pool is shut down without waiting: its thread ends on its own, soon.
    async with asyncio.timeout(5):
        while _reader_threads() - before:
            await asyncio.sleep(0.01)
