"""Acknowledged rows on a real outbox in SQLite: deleted together, held in the window until then,
never counted off the queues twice."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gateway.messages import acked as acked_module
from gateway.messages import outbox
from gateway.messages.acked import AckedRows
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.quota import RecipientQueues
from gateway.messages.send_window import SendWindow
from gateway.messages.store import Store

RECIPIENT = "oven-maker"
CUSTOMER = "baeckerei-schmidt"


class _Outbox(Outbox):
    """The real outbox; what leaves its counts is noted, and a test may make deletes fail."""

    def __init__(self, store: Store) -> None:
        queues = RecipientQueues(
            {RECIPIENT: "withhold"},
            max_rows_total=10_000,
            max_rows=None,
            max_bytes=1 << 30,
            disk_share=0.5,
            disk=Path("."),
        )
        super().__init__(store, queues, max_rows=10_000)
        self.left: list[tuple[str, int, int]] = []  # (customer, rows, bytes) off the counts
        self.changed = asyncio.Event()
        self.refusals = 0  # the next deletes that fail, as on a full disk
        self.deletes: list[list[int]] = []

    def done(self, recipient: str, customer: str, count: int, payload_bytes: int = 0) -> None:
        super().done(recipient, customer, count, payload_bytes)
        self.left.append((customer, count, payload_bytes))
        self.changed.set()

    async def delete(self, ids: Sequence[int], *, durable: bool = True) -> set[int]:
        self.deletes.append(list(ids))
        if self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return await super().delete(ids, durable=durable)

    async def wait_left(self, rows: int) -> None:
        async with asyncio.timeout(10):
            while sum(n for _, n, _ in self.left) < rows:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[_Outbox]:
    store = Store(tmp_path / "einblick.db")
    await store.open()
    yield _Outbox(store)
    await store.close()


async def _queue(box: _Outbox, count: int) -> list[OutboxRow]:
    specs = [
        (i + 1, RECIPIENT, CUSTOMER, "oven-1", "maintenance", f"ovens/{i}", b"x" * (i + 1), 0)
        for i in range(count)
    ]
    return await box.store.transaction(functools.partial(outbox.insert, rows=specs))


async def _waiting(box: _Outbox) -> list[int]:
    def job(conn: sqlite3.Connection) -> list[int]:
        return [r.id for r in outbox.pending(conn, RECIPIENT, after=0, limit=100)]

    return await box.store.read(job)


def _ack(acks: AckedRows, window: SendWindow, rows: Sequence[OutboxRow]) -> None:
    for row in rows:
        window.free -= 1  # as the forwarder takes a slot before publishing
        acks.add(row.id, row.customer, len(row.payload))


async def test_acknowledged_rows_are_deleted_together_and_give_their_slots_back(
    box: _Outbox,
) -> None:
    rows = await _queue(box, 3)
    window = SendWindow(10)
    acks = AckedRows(RECIPIENT, box, window)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(acks.run(), name="acks-under-test")
        _ack(acks, window, rows)
        assert all(r.id in acks for r in rows)  # never sent again from here on
        assert window.free == 7  # their slots are kept until the delete commits
        await box.wait_left(3)
        running.cancel()
    assert box.deletes == [[r.id for r in rows]]  # one transaction for the three
    assert box.left == [(CUSTOMER, 3, 1 + 2 + 3)]
    assert window.free == 10
    assert not any(r.id in acks for r in rows)
    assert await _waiting(box) == []


async def test_a_delete_that_fails_is_retried_and_its_rows_stay_marked_delivered(
    box: _Outbox,
) -> None:
    rows = await _queue(box, 2)
    box.refusals = 1
    window = SendWindow(10)
    acks = AckedRows(RECIPIENT, box, window)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(acks.run(), name="acks-under-test")
        _ack(acks, window, rows)
        async with asyncio.timeout(10):
            while len(box.deletes) < 1:
                await asyncio.sleep(0.005)
        assert all(r.id in acks for r in rows) and window.free == 8  # not sent again meanwhile
        await box.wait_left(2)
        running.cancel()
    assert box.deletes == [[r.id for r in rows]] * 2
    assert box.left == [(CUSTOMER, 2, 3)]
    assert window.free == 10
    assert await _waiting(box) == []


async def test_rows_an_erasure_took_are_not_counted_off_again(box: _Outbox) -> None:
    """The erasure counted them off when it deleted them; the acknowledgement's delete, finding
    them gone, counts only the others."""
    rows = await _queue(box, 3)
    await box.store.transaction(functools.partial(outbox.delete, ids=[rows[0].id]))
    window = SendWindow(10)
    acks = AckedRows(RECIPIENT, box, window)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(acks.run(), name="acks-under-test")
        _ack(acks, window, rows)
        await box.wait_left(2)
        running.cancel()
    assert box.left == [(CUSTOMER, 2, 2 + 3)]
    assert window.free == 10  # every slot back, the erased row's too


async def test_a_stop_deletes_what_the_batched_delete_has_not(
    box: _Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(acked_module, "DELETE_AFTER_S", 3600.0)  # only the stop deletes
    rows = await _queue(box, 2)
    window = SendWindow(10)
    acks = AckedRows(RECIPIENT, box, window)
    _ack(acks, window, rows)
    await acks.delete_all()
    assert box.left == [(CUSTOMER, 2, 3)]
    assert not any(r.id in acks for r in rows)
    assert await _waiting(box) == []
    await acks.delete_all()  # nothing left: no second delete
    assert len(box.deletes) == 1
