"""The pipeline on its own: a real database and log writer, the device link faked in memory
(tests/gateway/fake_link.py), so what is acknowledged when can be watched message by message."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from gateway.config import PipelineConfig
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages import outbox
from gateway.messages.clock import elapsed
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.pipeline import Pipeline
from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import RecipientQueues
from gateway.messages.store import Store
from policies.engine import Engine
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_end_to_end import BAKERY
from tests.policies.conftest import compile_text

TOPIC = "bakery/oven-1/telemetry"
RECIPIENT = "oven-maker"


@dataclass
class Bench:
    pipeline: Pipeline
    store: Store
    link: FakeLink
    handed: list[OutboxRow] = field(default_factory=list)
    handed_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_handed(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.handed) < count:
                self.handed_event.clear()
                await self.handed_event.wait()

    async def count(self, query: str) -> int:
        def job(conn: sqlite3.Connection) -> int:
            return int(conn.execute(query).fetchone()[0])

        return await self.store.read(job)


def reading(temperature: float) -> bytes:
    return orjson.dumps({"temperature": temperature, "door_open": False})


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    yield await _bench(tmp_path, queue_size=100)


async def _bench(tmp_path: Path, *, queue_size: int, flood: FloodGuard | None = None) -> Bench:
    keyring = Keyring()
    engine = Engine([compile_text(BAKERY, {RECIPIENT: "Ofenbau Müller"})], keyring)
    store = Store(tmp_path / "einblick.db")
    await store.open()
    signer = Signer.generate()
    writer = await store.read(lambda conn: LogWriter(conn, signer, "unit"))
    handed: list[OutboxRow] = []
    event = asyncio.Event()

    def on_rows(recipient: str, rows: Sequence[OutboxRow]) -> None:
        assert recipient == RECIPIENT
        handed.extend(rows)
        event.set()

    box = Outbox(
        store,
        RecipientQueues(
            {RECIPIENT: "withhold"},
            max_rows_total=10_000,
            max_rows=None,
            max_bytes=None,
            disk_share=0.5,
            disk=tmp_path,
        ),
        max_rows=10_000,
    )
    box.attach(RECIPIENT, functools.partial(on_rows, RECIPIENT))
    pipeline = Pipeline(
        engine=lambda: engine,
        store=store,
        log_writer=lambda: writer,
        keyring=keyring,
        topic_prefix={},
        queue_size=queue_size,
        batch_max=100,
        max_payload_bytes=65536,
        outbox=box,
        flood=flood,
    )
    return Bench(pipeline, store, FakeLink(), handed, event)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a status condition of the component under test (no external event exists)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


async def test_a_message_is_acknowledged_only_once_its_entry_and_row_are_committed(
    bench: Bench,
) -> None:
    # The database refuses writes (a disk gone read-only): the commit fails, and fails again.
    await bench.store.read(lambda conn: conn.execute("PRAGMA query_only=ON"))
    message = bench.link.deliver(TOPIC, reading(180.2))
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(bench.pipeline.process([Arrival(message)]), name="batch")
        await until(lambda: bench.pipeline.stats.commit_failures >= 2, "two failed commits")
        # Fail closed: nothing acknowledged (the broker keeps the message), nothing handed on.
        assert bench.link.acked == []
        assert bench.handed == []
        assert bench.pipeline.stats.failing_closed is not None
        assert await bench.count("SELECT COUNT(*) FROM outbox") == 0
        # The disk is back: the same batch commits, and only now is the message acknowledged.
        await bench.store.read(lambda conn: conn.execute("PRAGMA query_only=OFF"))
        async with asyncio.timeout(10):
            await task
    assert bench.link.acked == [message.mid]
    assert bench.pipeline.stats.failing_closed is None
    assert await bench.count("SELECT COUNT(*) FROM outbox") == 1
    assert [orjson.loads(r.payload) for r in bench.handed] == [
        {"temperature": 180.0, "door_open": False}
    ]
    await bench.store.close()


async def test_messages_the_broker_held_while_failing_closed_are_not_taken_for_a_flood(
    tmp_path: Path,
) -> None:
    # While commits fail nothing is acknowledged, so the broker holds the devices' messages and
    # hands them over at once when the disk is back: judged by arrival alone, a device sending
    # within its rate would be withheld as "flooding", a false reason (tests/faults/test_outages).
    guard = FloodGuard(rate=100.0, burst=5)
    bench = await _bench(tmp_path, queue_size=100, flood=guard)
    key = ("baeckerei-schmidt", "oven-1")
    start = elapsed()
    spent = sum(1 for _ in iter(lambda: guard.allow(key, start), False))
    assert spent == guard.burst  # the device has spent its burst
    await bench.store.read(lambda conn: conn.execute("PRAGMA query_only=ON"))
    message = bench.link.deliver(TOPIC, reading(180.2))
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(bench.pipeline.process([Arrival(message)]), name="batch")
        await until(lambda: bench.pipeline.stats.commit_failures >= 2, "two failed commits")
        await bench.store.read(lambda conn: conn.execute("PRAGMA query_only=OFF"))
        async with asyncio.timeout(10):
            await task
    failed_for = elapsed() - start
    assert failed_for >= 0.2  # the first retry waits 0.2 s
    # The backlog it earned at 100 msg/s over that time is let through, well beyond the burst.
    now = elapsed()
    allowed = 0
    while guard.allow(key, now) and allowed < 10_000:
        allowed += 1
    assert allowed >= 100.0 * 0.2 > guard.burst
    assert allowed <= 100.0 * failed_for + guard.burst + 1  # and not more than that
    await bench.store.close()


async def test_a_device_s_messages_are_decided_acknowledged_and_handed_on_in_order(
    bench: Bench,
) -> None:
    sent = [bench.link.deliver(TOPIC, reading(170.0 + i)) for i in range(40)]
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        for message in sent:
            bench.pipeline.receive(message)
        await bench.wait_handed(40)
        writer.cancel()
    assert [orjson.loads(r.payload)["temperature"] for r in bench.handed] == [
        170.0 + i for i in range(40)
    ]
    ids = [r.id for r in bench.handed]
    assert ids == sorted(ids) and len(set(ids)) == 40  # outbox order is commit order
    assert bench.link.acked == [m.mid for m in sent]
    rows = await bench.store.read(lambda conn: outbox.pending(conn, RECIPIENT, after=0, limit=100))
    assert [r.id for r in rows] == ids
    await bench.store.close()


async def test_messages_of_a_session_stepped_back_from_are_left_to_the_broker(
    bench: Bench,
) -> None:
    """The device link steps back when the outbox is full; what that session delivered and is
    still queued here is the broker's again and comes back on the next session. Deciding it as
    well put every such message in the outbox twice, and under load each step back refilled the
    outbox with them: it never drained (the backpressure tests hung). A session the broker
    ended (a kill -9) is not returned: its messages are decided, as the broker may have lost
    them."""
    stepped_back, dropped = FakeLink(), FakeLink()
    returned = [stepped_back.deliver(TOPIC, reading(170.0 + i)) for i in range(3)]
    lost = dropped.deliver(TOPIC, reading(175.0))
    stepped_back.returned = True
    await stepped_back.close()
    dropped.lose("the broker went away")
    again = bench.link.deliver(TOPIC, reading(170.0))  # the next session: message 1 again
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        for message in [*returned, lost, again]:
            bench.pipeline.receive(message)
        await bench.wait_handed(2)
        # A handover's fence over all five passes: the three left to the broker count again
        # when it sends them anew, and would otherwise hold every later fence of a quiet site.
        async with asyncio.timeout(5):
            await bench.pipeline.committed_through(bench.pipeline.stats.received)
        writer.cancel()
    assert [orjson.loads(r.payload)["temperature"] for r in bench.handed] == [175.0, 170.0]
    assert stepped_back.acked == [] and dropped.acked == [lost.mid]
    assert bench.link.acked == [again.mid]
    assert bench.pipeline.stats.returned == 3
    assert bench.pipeline.stats.committed == 2
    assert await bench.count("SELECT COUNT(*) FROM entries") == 2
    await bench.store.close()


async def test_a_message_left_to_the_broker_gives_its_flood_token_back(tmp_path: Path) -> None:
    """It is judged again when the broker sends it anew: counting both arrivals would call a
    device that keeps to its rate a flooder after each step back."""
    guard = FloodGuard(rate=0.001, burst=5)  # no refill within the test
    bench = await _bench(tmp_path, queue_size=100, flood=guard)
    stepped_back = FakeLink()
    returned = [stepped_back.deliver(TOPIC, reading(170.0 + i)) for i in range(3)]
    for message in returned:
        bench.pipeline.receive(message)
    decided = [bench.link.deliver(TOPIC, reading(180.0 + i)) for i in range(2)]
    for message in decided:
        bench.pipeline.receive(message)
    stepped_back.returned = True
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        await bench.wait_handed(2)
        writer.cancel()
    # Five arrivals spent the burst of five; the three handed back are refunded.
    now = elapsed()
    assert sum(guard.allow(("baeckerei-schmidt", "oven-1"), now) for _ in range(10)) == 3
    assert bench.pipeline.stats.returned == 3
    await bench.store.close()


async def test_reading_pauses_at_the_queue_limit_and_resumes_when_it_drains(
    tmp_path: Path,
) -> None:
    bench = await _bench(tmp_path, queue_size=8)
    # The writer is not running yet: messages wait in the queue, unacknowledged.
    for i in range(7):
        bench.pipeline.receive(bench.link.deliver(TOPIC, reading(100.0 + i)))
    assert bench.link.paused == 0 and bench.link.reading
    bench.pipeline.receive(bench.link.deliver(TOPIC, reading(107.0)))
    assert bench.link.paused == 1 and not bench.link.reading  # backpressure, never a drop
    assert bench.link.acked == []
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        await bench.wait_handed(8)
        writer.cancel()
    assert bench.link.reading and bench.link.resumed == 1
    assert bench.link.acked == list(range(1, 9))
    await bench.store.close()


async def test_a_backlog_is_decided_in_batches_that_leave_the_forwarders_their_turns(
    tmp_path: Path,
) -> None:
    """Draining a backlog, the writer must give the loop back between batches of the default
    size, so the forwarders publish and delete while intake goes on. One batch of 1,000 held the
    loop for a second on a busy box: the outbox grew and forwarding fell to ~200 msg/s."""
    bench = await _bench(tmp_path, queue_size=1000)
    defaults = PipelineConfig()
    bench.pipeline.set_limits(
        batch_max=defaults.batch_max,
        max_payload_bytes=defaults.max_payload_bytes,
        outbox_max_rows=10_000,
    )
    for i in range(400):
        bench.pipeline.receive(bench.link.deliver(TOPIC, reading(100.0 + i % 50)))
    seen: list[int] = []  # what a forwarder's turn finds committed, while intake goes on

    async def forwarder_turns() -> None:
        while bench.pipeline.stats.committed < 400:
            seen.append(bench.pipeline.stats.committed)
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        turns = tasks.create_task(forwarder_turns(), name="forwarder-turns")
        await bench.wait_handed(400)
        await turns
        writer.cancel()
    between = sorted({n for n in seen if 0 < n < 400})
    assert len(between) >= 2, between  # turns came between batches, not only after all 400
    assert bench.pipeline.stats.batches >= 3
    await bench.store.close()


async def test_a_batch_committed_one_at_a_time_hands_each_message_on_as_it_commits(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose entries fail to append (not the database) is committed message by
    message. Between those commits another writer may hand on rows with higher ids, and a
    forwarder takes rows in id order: each message's rows go on as its own commit ends."""
    commit = bench.pipeline._commit
    calls = 0

    async def first_fails(*args: object) -> list[OutboxRow]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("an entry that cannot be appended")
        return await commit(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(bench.pipeline, "_commit", first_fails)
    handed_at: list[int] = []  # how many rows had been handed on at each later commit

    async def counting(*args: object) -> list[OutboxRow]:
        handed_at.append(len(bench.handed))
        return await first_fails(*args)

    monkeypatch.setattr(bench.pipeline, "_commit", counting)
    inbound = [bench.link.deliver(TOPIC, reading(180.0 + i)) for i in range(3)]
    await bench.pipeline.process([Arrival(message) for message in inbound])
    assert calls == 4  # the batch, then each message
    assert handed_at == [0, 0, 1, 2]  # each one's row was on before the next commit began
    assert [r.entry_seq for r in bench.handed] == sorted(r.entry_seq for r in bench.handed)
    assert len(bench.handed) == 3


async def test_a_message_refused_at_the_queues_end_is_counted_once_it_is_taken(
    tmp_path: Path,
) -> None:
    """A refusal (QueueFull) is handled again later: counted at once as received, a handover's
    fence would wait for one commit more than will come on a quiet site."""
    bench = await _bench(tmp_path, queue_size=2)
    try:
        for i in range(2 + 64):  # the mark and its slack (gateway/messages/intake.py)
            bench.pipeline.receive(bench.link.deliver(TOPIC, orjson.dumps({"temperature": i})))
        with pytest.raises(asyncio.QueueFull):
            bench.pipeline.receive(bench.link.deliver(TOPIC, orjson.dumps({"temperature": 0})))
        assert bench.pipeline.stats.received == 66
        async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(bench.pipeline.run(), name="pipeline-under-test")
            await bench.pipeline.committed_through(bench.pipeline.stats.received)
            writer.cancel()
        assert bench.pipeline.stats.committed == 66
    finally:
        await bench.store.close()
