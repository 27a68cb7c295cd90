"""The Outbox object: one owner of the outbox table, its depth and its room signal.

A real SQLite store; no broker (the pipeline and forwarder tests drive it end to end)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.messages import outbox
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.quota import RecipientQueues, WhenFull
from gateway.messages.store import Store
from tests.log.conftest import fresh_db

RECIPIENT = "ofenbau"


def _specs(
    count: int, customer: str = "baeckerei"
) -> list[tuple[int, str, str, str, str, str, bytes, float]]:
    return [
        (i + 1, RECIPIENT, customer, "oven-1", "g1", f"ovens/{i}", b"x" * 10, 0)
        for i in range(count)
    ]


def _queues(
    tmp_path: Path, when_full: WhenFull, *, max_rows_total: int, max_rows: int
) -> RecipientQueues:
    return RecipientQueues(
        {RECIPIENT: when_full},
        max_rows_total=max_rows_total,
        max_rows=max_rows,
        max_bytes=1 << 20,
        disk_share=0.5,
        disk=tmp_path,
    )


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Outbox]:
    store = Store(tmp_path / "einblick.db")
    await store.open()
    queues = _queues(tmp_path, "withhold", max_rows_total=10, max_rows=100)
    yield Outbox(store, queues, max_rows=10)
    await store.close()


async def _commit(box: Outbox, count: int, customer: str = "baeckerei") -> list[OutboxRow]:
    """Rows admitted by the depth, inserted in one transaction, handed over: the pipeline's way."""
    for _ in range(count):
        assert box.queues.admit(RECIPIENT, customer, 10).admitted
    rows = await box.store.transaction(lambda conn: outbox.insert(conn, _specs(count, customer)))
    assert isinstance(rows, list)
    box.hand_over(rows)
    return rows


async def test_committed_rows_reach_the_attached_reader_and_can_be_read_back(box: Outbox) -> None:
    offered: list[OutboxRow] = []
    box.attach(RECIPIENT, offered.extend)
    rows = await _commit(box, 3)
    assert [r.id for r in offered] == [r.id for r in rows]
    assert [r.id for r in await box.pending(RECIPIENT, after=0, limit=10)] == [1, 2, 3]
    box.detach(RECIPIENT)
    await _commit(box, 1)
    assert len(offered) == 3  # a detached forwarder is offered nothing more


async def test_the_room_signal_closes_at_max_rows_and_opens_below_nine_tenths(box: Outbox) -> None:
    full = box.when_full()
    await _commit(box, 9)
    assert not box.full.is_set() and box.has_room.is_set() and not full.done()
    await _commit(box, 1)
    assert box.full.is_set() and not box.has_room.is_set()
    await asyncio.wait_for(full, 1)  # the device link's waiter completes
    assert box.pause_reason() == "the outbox is full (10 rows, limit outbox.max_rows 10)"
    rows = await box.pending(RECIPIENT, after=0, limit=10)
    await box.delete([rows[0].id])
    box.gone(RECIPIENT, [(rows[0].customer, len(rows[0].payload))])
    assert box.full.is_set(), "9 rows is not below 90 % of 10: no flapping at the mark"
    await box.delete([rows[1].id])
    box.gone(RECIPIENT, [(rows[1].customer, len(rows[1].payload))])
    assert not box.full.is_set() and box.has_room.is_set()
    assert box.queues.rows[RECIPIENT] == 8
    assert len(await box.pending(RECIPIENT, after=0, limit=100)) == 8


async def test_a_hold_share_at_its_size_closes_the_room_signal_before_the_outbox_is_full(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "einblick.db")
    await store.open()
    try:
        queues = _queues(tmp_path, "hold", max_rows_total=100, max_rows=5)
        box = Outbox(store, queues, max_rows=100)
        await _commit(box, 4)
        assert not box.full.is_set() and box.has_room.is_set()
        await _commit(box, 1)  # the share's 5 rows, of an outbox of 100
        assert box.full.is_set() and not box.has_room.is_set()
        assert box.pause_reason() == (
            f"recipient {RECIPIENT} (customer baeckerei's share) at its queue quota"
            " (when_queue_full: hold)"
        )
    finally:
        await store.close()


async def test_the_depth_at_start_is_what_the_table_holds(box: Outbox) -> None:
    await box.store.transaction(lambda conn: outbox.insert(conn, _specs(4)))
    await box.load()
    assert box.queues.rows[RECIPIENT] == 4


async def test_an_erasure_gives_room_back_and_makes_the_forwarder_read_again(box: Outbox) -> None:
    rereads: list[str] = []
    offered: list[OutboxRow] = []
    box.attach(RECIPIENT, offered.extend, lambda: rereads.append(RECIPIENT))
    await _commit(box, 10)
    assert box.full.is_set()
    await box.store.transaction(lambda conn: conn.execute("DELETE FROM outbox"))
    box.erased("baeckerei", {RECIPIENT: 10}, {RECIPIENT: 100})
    assert rereads == [RECIPIENT]
    assert box.queues.rows[RECIPIENT] == 0 and box.has_room.is_set()
    notice = await box.store.transaction(lambda conn: outbox.insert(conn, _specs(1)))
    assert isinstance(notice, list)
    box.added(notice)
    assert box.queues.rows[RECIPIENT] == 1
    assert offered[-1].id == notice[0].id


async def test_an_erasure_is_bracketed_so_forwarders_can_tell_it_ran(box: Outbox) -> None:
    """``erasing`` moves the count as it starts and as it ends and clears ``quiet`` while any
    runs (two at once: quiet only after both); it ends even when the erasure fails."""
    assert box.erasures == 0 and box.quiet.is_set()
    async with box.erasing():
        assert box.erasures == 1 and not box.quiet.is_set()
        async with box.erasing():
            assert box.erasures == 2
        assert box.erasures == 3 and not box.quiet.is_set()  # the first still runs
    assert box.erasures == 4 and box.quiet.is_set()
    with pytest.raises(sqlite3.OperationalError):
        async with box.erasing():
            raise sqlite3.OperationalError("database or disk is full")
    assert box.erasures == 6 and box.quiet.is_set()


def test_present_and_queued_answer_from_the_table(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    assert not outbox.present(conn)  # a database without an outbox (0.1.0)
    conn.close()
    conn = fresh_db(tmp_path / "einblick.db")
    assert outbox.present(conn)
    [row] = outbox.insert(conn, _specs(1))
    assert outbox.queued(conn, row.id)
    outbox.delete(conn, [row.id])
    assert not outbox.queued(conn, row.id)  # acknowledged and deleted
    conn.close()


def test_ids_only_grow_whether_rows_come_one_or_several_at_a_time(tmp_path: Path) -> None:
    # A single row takes its id from SQLite in one statement, several from the sequence: both
    # must follow AUTOINCREMENT, so an id deleted (sent) never comes back and a forwarder's
    # "after id N" cursor never skips a row.
    conn = fresh_db(tmp_path / "einblick.db")
    ids: list[int] = []
    for count in (1, 3, 1, 1, 2, 1):
        rows = outbox.insert(conn, _specs(count))
        assert [r.id for r in outbox.by_ids(conn, [r.id for r in rows])] == [r.id for r in rows]
        ids += [r.id for r in rows]
        outbox.delete(conn, [r.id for r in rows])  # sent: the newest ids are gone
    assert ids == sorted(set(ids)) and len(ids) == 9
    [single] = outbox.insert(conn, _specs(1))
    assert single.id > ids[-1]
    [stored] = outbox.by_ids(conn, [single.id])
    assert stored == dataclasses.replace(single, queued=0.0)
    conn.close()


def test_erase_takes_a_subjects_payloads_and_keeps_other_grants_rows(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path / "einblick.db")
    rows = outbox.insert(conn, _specs(3) + _specs(1, "huber"))
    notice = (9, RECIPIENT, "baeckerei", "", "erasure-notice", "n", b"{}", 0)
    outbox.insert(conn, [notice])
    assert outbox.erase(conn, "baeckerei", "oven-1", keep_grant="erasure-notice") == [
        (RECIPIENT, 3, 30)
    ]
    left = {(r.customer, r.grant) for r in outbox.by_ids(conn, [r.id for r in rows] + [5])}
    assert left == {("huber", "g1"), ("baeckerei", "erasure-notice")}
    conn.close()
