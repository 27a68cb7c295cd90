"""The reader for asyncio: every call on the reader's own thread, never on the event loop."""

from __future__ import annotations

import threading

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
