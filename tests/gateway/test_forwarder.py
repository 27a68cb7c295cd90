"""A forwarder on its own: a real outbox in SQLite, the upstream link faked in memory
(tests/gateway/fake_link.py), so each PUBACK and each lost session is the test's to give."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.config import RecipientConfig
from gateway.errors import StoreError
from gateway.messages import acked as acked_module
from gateway.messages import forwarder as forwarder_module
from gateway.messages import handed as handed_module
from gateway.messages import outbox
from gateway.messages.endpoint import ConnectionLost, MqttError, NotSent, endpoint_for
from gateway.messages.forwarder import Forwarder
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.quota import RecipientQueues
from gateway.messages.sendtime import Settled
from gateway.messages.store import Store
from policies.decision import Reason
from tests.gateway.clocks import suspendable
from tests.gateway.fake_link import FakeLink

RECIPIENT = RecipientConfig(name="oven-maker", display_name="Ofenbau", url="mqtt://127.0.0.1:1")


@dataclass
class Upstream:
    """Hands the forwarder a new FakeLink per session; the first ``refusals`` cannot connect."""

    refusals: int = 0
    links: list[FakeLink] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, endpoint: Any, **_: Any) -> FakeLink:
        refuse = "connection refused" if len(self.links) < self.refusals else None
        link = FakeLink(endpoint, refuse=refuse)
        self.links.append(link)
        if refuse is None:
            self.opened.set()
        return link

    async def session(self, number: int) -> FakeLink:
        """The ``number``-th session that connected (1-based)."""
        async with asyncio.timeout(10):
            while len([k for k in self.links if k.refuse is None]) < number:
                self.opened.clear()
                await self.opened.wait()
        return [k for k in self.links if k.refuse is None][number - 1]


@dataclass
class Bench:
    store: Store
    upstream: Upstream
    withheld: list[tuple[OutboxRow, Reason]] = field(default_factory=list)
    done: list[tuple[str, int]] = field(default_factory=list)  # (customer, rows) left the outbox
    done_event: asyncio.Event = field(default_factory=asyncio.Event)
    refused_grants: set[str] = field(default_factory=set)
    box: _Outbox | None = None  # the last forwarder's outbox
    tried: list[set[int]] = field(default_factory=list)  # each check's rows maybe delivered
    opened: list[int | None] = field(default_factory=list)  # each check's reachable-since (µs)
    given: list[int] = field(default_factory=list)  # how many rows each check was given
    # Run inside the next send-time check, once (an erasure committing while it runs).
    during_check: Callable[[], Awaitable[None]] | None = None

    def forwarder(
        self, *, in_turn: bool = False, box: _Outbox | None = None, window: int = 500
    ) -> Forwarder:
        """A forwarder on a new outbox, or on ``box`` (loaded, or its ``last_id`` set, first)."""
        self.box = box or _Outbox(self)
        return Forwarder(
            RECIPIENT,
            endpoint_for(RECIPIENT, "unit", None),
            self.box,
            at_send=self.at_send,
            checked=self.checked,
            settled_now=self.settled_now if in_turn else None,
            window=window,
        )

    def checked(self) -> object:
        # As the send-time check: what it judges by (here, the grants refused) besides the clock.
        return frozenset(self.refused_grants)

    def settled_now(self, rows: Sequence[OutboxRow]) -> Settled | None:
        # As the send-time check: None when a row needs more than a look (here: a refusal).
        if any(r.grant in self.refused_grants for r in rows):
            return None
        return Settled(list(rows), [])

    async def at_send(
        self,
        rows: Sequence[OutboxRow],
        reachable_us: int | None,
        tried: Callable[[OutboxRow], bool],
    ) -> Settled:
        # The send-time check's contract (gateway/messages/sendtime.py), tested there on its own:
        # rows that may not leave are recorded, deleted and off the queue counts before it returns.
        self.opened.append(reachable_us)
        self.given.append(len(rows))
        if self.during_check is not None:
            during, self.during_check = self.during_check, None
            await during()
        self.tried.append({r.id for r in rows if tried(r)})
        refused = [(r, Reason("consent_withdrawn")) for r in rows if r.grant in self.refused_grants]
        if refused:
            self.withheld.extend(refused)
            box = self.box
            assert box is not None
            await self.store.transaction(
                functools.partial(outbox.delete, ids=[r.id for r, _ in refused]),
                on_commit=lambda: box.gone(
                    RECIPIENT.name, [(r.customer, len(r.payload)) for r, _ in refused]
                ),
            )
        gone = {r.id for r, _ in refused}
        return Settled([r for r in rows if r.id not in gone], [r for r, _ in refused])

    def on_done(self, recipient: str, customer: str, count: int, size: int) -> None:
        self.done.append((customer, count))
        self.done_event.set()

    async def wait_done(self, rows: int) -> None:
        async with asyncio.timeout(10):
            while sum(n for _, n in self.done) < rows:
                self.done_event.clear()
                await self.done_event.wait()

    async def queue(self, grants: Sequence[str]) -> list[OutboxRow]:
        specs = [
            (
                i + 1,
                RECIPIENT.name,
                "baeckerei-schmidt",
                "oven-1",
                grant,
                f"ovens/{i}",
                b"%d" % i,
                0,
            )
            for i, grant in enumerate(grants)
        ]
        return await self.store.transaction(functools.partial(outbox.insert, rows=specs))

    async def waiting(self) -> list[int]:
        def job(conn: sqlite3.Connection) -> list[int]:
            return [r.id for r in outbox.pending(conn, RECIPIENT.name, after=0, limit=1000)]

        return await self.store.read(job)


class _Outbox(Outbox):
    """The real outbox on the bench's store; rows that leave it are also noted on the bench."""

    def __init__(self, bench: Bench, handed: Path | None = None) -> None:
        queues = RecipientQueues(
            {RECIPIENT.name: "withhold"},
            max_rows_total=10_000,
            max_rows=None,
            max_bytes=1 << 30,  # fixed: the forwarder's bench measures no disk
            disk_share=0.5,
            disk=Path("."),
        )
        super().__init__(bench.store, queues, max_rows=10_000, handed=handed)
        self._bench = bench

    def done(self, recipient: str, customer: str, count: int, payload_bytes: int = 0) -> None:
        super().done(recipient, customer, count, payload_bytes)
        self._bench.on_done(recipient, customer, count, payload_bytes)


@pytest.fixture
async def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bench]:
    upstream = Upstream()
    # The one seam: the forwarder opens its sessions through this name.
    monkeypatch.setattr(forwarder_module, "MqttConnection", upstream)
    store = Store(tmp_path / "einblick.db")
    await store.open()
    yield Bench(store, upstream)
    await store.close()


async def test_rows_go_out_in_order_and_are_deleted_only_after_their_puback(bench: Bench) -> None:
    rows = await bench.queue(["maintenance"] * 6)
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(6)
        assert [p.topic for p in link.published] == [r.topic for r in rows]
        assert [p.payload for p in link.published] == [r.payload for r in rows]
        assert await bench.waiting() == [r.id for r in rows]  # sent, not acknowledged: kept
        link.puback(2)
        await bench.wait_done(2)
        assert await bench.waiting() == [r.id for r in rows[2:]]
        link.puback()
        await bench.wait_done(6)
        assert await bench.waiting() == []
        assert forwarder.state.sent == 6 and forwarder.state.in_flight == 0
        running.cancel()


async def test_rows_an_erasure_took_while_in_flight_leave_the_counts_once(bench: Bench) -> None:
    """Published, then erased before their PUBACK (the erasure took them off the queue counts):
    the acknowledgement's delete finds them gone and does not count them a second time (before,
    the recipient's total fell below the rows still waiting)."""
    rows = await bench.queue(["maintenance"] * 4)
    forwarder = bench.forwarder()
    box = bench.box
    assert box is not None
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(4)
        taken = [r.id for r in rows[:2]]
        await bench.store.transaction(functools.partial(outbox.delete, ids=taken))
        box.erased("baeckerei-schmidt", {RECIPIENT.name: 2}, {RECIPIENT.name: 2})
        link.puback()
        await bench.wait_done(4)
        running.cancel()
    assert sum(n for _, n in bench.done) == 4  # two by the erasure, two by the delete
    assert await bench.waiting() == []


async def _erase(bench: Bench, rows: Sequence[OutboxRow]) -> None:
    """As an erasure does (gateway/rights/forgetting.py): ``rows`` deleted in one transaction
    inside ``Outbox.erasing``, their room given back after the commit."""
    box = bench.box
    assert box is not None
    async with box.erasing():
        await bench.store.transaction(functools.partial(outbox.delete, ids=[r.id for r in rows]))
        box.erased("baeckerei-schmidt", {RECIPIENT.name: len(rows)}, {RECIPIENT.name: len(rows)})


async def test_rows_an_erasure_deleted_during_the_send_time_check_never_leave(
    bench: Bench,
) -> None:
    """The erasure commits while the forwarder checks a batch: the batch is not published from
    memory; what the erasure left is read again and leaves, what it deleted never does (before:
    all four were published after the erasure had deleted two)."""
    rows = await bench.queue(["maintenance"] * 4)
    bench.during_check = functools.partial(_erase, bench, rows[1:3])
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(2)
        link.puback()
        await bench.wait_done(4)  # two erased, two delivered
        await _parked(forwarder)
        running.cancel()
    assert [p.payload for p in link.published] == [rows[0].payload, rows[3].payload]
    assert await bench.waiting() == []


async def test_an_erasure_while_a_batch_waits_for_room_stops_it_where_it_stands(
    bench: Bench,
) -> None:
    """Two of four rows in flight (a window of two), the task waiting for room: an erasure
    takes the third. The rest of the batch is read again after the rows already sent -- the
    erased one never leaves, the one in flight is not sent twice -- and the slot taken when it
    noticed is given back."""
    rows = await bench.queue(["maintenance"] * 4)
    forwarder = bench.forwarder(window=2)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(2)
        await _erase(bench, rows[2:3])
        link.puback(1)  # room for one: the task takes it and finds the erasure
        await link.wait_published(3)
        link.puback()
        await bench.wait_done(4)  # one erased, three delivered
        await _parked(forwarder)
        running.cancel()
    assert [p.payload for p in link.published] == [r.payload for r in (rows[0], rows[1], rows[3])]
    assert forwarder._window.free == 2
    assert await bench.waiting() == []


async def test_held_rows_an_erasure_deleted_during_their_check_never_leave(bench: Bench) -> None:
    """The same for rows held to the end of their unit, read back by id when they fall due: the
    one erased stays gone, the other is read again and leaves."""
    release_at = time.time_ns() // 1000 + 200_000  # 0.2 s from now
    base = (RECIPIENT.name, "baeckerei-schmidt", "oven-1", "hourly")
    specs = [
        (i + 1, *base, f"ovens/{i}", b"%d" % i, 0, None, None, None, False, release_at)
        for i in range(2)
    ]
    rows = await bench.store.transaction(functools.partial(outbox.insert, rows=specs))
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        async with asyncio.timeout(10):
            while len(bench.opened) < 1:  # the first check holds them
                await asyncio.sleep(0.005)
        bench.during_check = functools.partial(_erase, bench, rows[:1])
        await link.wait_published(1)
        link.puback()
        await bench.wait_done(2)
        await _parked(forwarder)
        running.cancel()
    assert [p.payload for p in link.published] == [rows[1].payload]
    assert await bench.waiting() == []


async def test_offered_rows_wait_for_an_erasure_that_runs_and_leave_only_if_it_left_them(
    bench: Bench,
) -> None:
    """Rows offered while an erasure runs do not leave in the committing turn; those it deletes
    never leave, the others do once it has committed."""
    forwarder = bench.forwarder(in_turn=True)
    box = bench.box
    assert box is not None
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await _parked(forwarder)
        rows = await bench.queue(["maintenance"] * 3)
        async with box.erasing():
            forwarder.offer(rows)
            assert link.published == []  # not in this turn: the erasure may delete them
            await bench.store.transaction(functools.partial(outbox.delete, ids=[rows[0].id]))
            box.erased("baeckerei-schmidt", {RECIPIENT.name: 1}, {RECIPIENT.name: 1})
            assert link.published == []
        await link.wait_published(2)
        link.puback()
        await bench.wait_done(3)
        await _parked(forwarder)
        running.cancel()
    assert [p.payload for p in link.published] == [r.payload for r in rows[1:]]


async def test_a_row_no_longer_allowed_is_withheld_at_send_not_published(bench: Bench) -> None:
    rows = await bench.queue(["maintenance", "withdrawn", "maintenance", "withdrawn"])
    bench.refused_grants.add("withdrawn")
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(2)
        link.puback()
        await bench.wait_done(4)  # two withheld, two delivered
        running.cancel()
    assert [p.payload for p in link.published] == [rows[0].payload, rows[2].payload]
    assert [(r.id, why.code) for r, why in bench.withheld] == [
        (rows[1].id, "consent_withdrawn"),
        (rows[3].id, "consent_withdrawn"),
    ]
    assert forwarder.state.withheld_at_send == 2
    assert await bench.waiting() == []


async def test_a_consent_withdrawn_holds_back_rows_checked_and_waiting_for_room(
    bench: Bench,
) -> None:
    """Rows checked as a batch wait for room in the window; a consent withdrawn meanwhile holds
    back those not yet published (the customer is told "including anything still waiting to be
    sent"). Before, they left as checked."""
    rows = await bench.queue(["maintenance"] * 4)
    forwarder = bench.forwarder(window=2)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(2)  # rows 1 and 2 in flight; 3 and 4 checked, waiting for room
        bench.refused_grants.add("maintenance")  # the consent is withdrawn now
        link.puback()
        await bench.wait_done(4)  # two delivered, two withheld on the second look
        running.cancel()
    assert [p.payload for p in link.published] == [rows[0].payload, rows[1].payload]
    assert [(r.id, why.code) for r, why in bench.withheld] == [
        (rows[2].id, "consent_withdrawn"),
        (rows[3].id, "consent_withdrawn"),
    ]
    assert await bench.waiting() == []


async def test_rows_waiting_for_room_longer_than_a_check_is_good_for_are_checked_again(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check stays good for ``CHECKED_FOR_S``: a row held up longer by a slow recipient is
    checked again before it leaves (its hours or its validity may have ended meanwhile)."""
    monkeypatch.setattr(forwarder_module, "CHECKED_FOR_S", 0.0)
    rows = await bench.queue(["maintenance"] * 3)
    forwarder = bench.forwarder(window=1)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        for published in (1, 2, 3):
            await link.wait_published(published)
            link.puback()
        await bench.wait_done(3)
        running.cancel()
    assert [p.payload for p in link.published] == [r.payload for r in rows]
    # One check of the three, then each row again as it leaves (the bound is 0 here), once.
    assert len(bench.opened) == 4


async def test_a_consent_withdrawn_while_a_row_is_checked_again_holds_it_back(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check judges, then records (a transaction); a withdrawal in between moved what it
    judged by, so the row is checked once more before it may leave, and is held back."""
    monkeypatch.setattr(forwarder_module, "CHECKED_FOR_S", 0.0)  # every row checked again
    check = bench.at_send

    async def withdrawn_meanwhile(
        rows: Sequence[OutboxRow], reachable_us: int | None, tried: Callable[[OutboxRow], bool]
    ) -> Settled:
        settled = await check(rows, reachable_us, tried)
        if len(bench.given) == 2:  # the first check again, holding the room: withdrawn now
            bench.refused_grants.add("maintenance")
        return settled

    bench.at_send = withdrawn_meanwhile  # type: ignore[method-assign]
    rows = await bench.queue(["maintenance"] * 2)
    forwarder = bench.forwarder(window=1)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        await bench.upstream.session(1)
        await bench.wait_done(2)  # both withheld, none published
        running.cancel()
    assert [link.published for link in bench.upstream.links] == [[]]
    assert [r.id for r, _ in bench.withheld] == [r.id for r in rows]
    assert bench.given == [2, 2, 2]


async def test_a_check_again_that_fails_gives_its_room_back(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check made holding a row's room in the window fails (a full disk): the room is given
    back with the error. It was kept, so each such failure shrank the window for good, and
    once it was gone the recipient got nothing more."""
    monkeypatch.setattr(forwarder_module, "CHECKED_FOR_S", 0.0)
    check = bench.at_send

    async def failing_again(
        rows: Sequence[OutboxRow], reachable_us: int | None, tried: Callable[[OutboxRow], bool]
    ) -> Settled:
        if len(bench.given) == 1:  # the first check again
            bench.given.append(len(rows))
            raise StoreError("einblick.db: write failed: database or disk is full")
        return await check(rows, reachable_us, tried)

    bench.at_send = failing_again  # type: ignore[method-assign]
    rows = await bench.queue(["maintenance"] * 2)
    forwarder = bench.forwarder(window=1)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        second = await bench.upstream.session(2)
        for published in (1, 2):
            await second.wait_published(published)
            second.puback()
        await bench.wait_done(2)
        running.cancel()
    assert [p.payload for p in second.published] == [r.payload for r in rows]
    assert forwarder._window.free == 1


async def test_a_check_is_aged_on_the_clock_that_counts_through_a_suspend(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows checked at 21:59:59 under hours ending at 22:00, the box asleep through 22:00 while
    the second waits for room: on the monotonic clock the check was still fresh after it."""
    slept = suspendable(monkeypatch)
    await bench.queue(["maintenance"] * 2)
    forwarder = bench.forwarder(window=1)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(1)
        slept[0] = 3600.0  # suspended for an hour: the monotonic clock stood still
        link.puback()
        await link.wait_published(2)
        link.puback()
        await bench.wait_done(2)
        running.cancel()
    assert bench.given == [2, 1]  # the second row checked again before it left


async def test_it_reconnects_and_sends_again_what_was_not_acknowledged(bench: Bench) -> None:
    bench.upstream.refusals = 1  # the upstream is down at first
    rows = await bench.queue(["maintenance"] * 3)
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        first = await bench.upstream.session(1)
        assert bench.upstream.links[0].refuse is not None  # the refused attempt came first
        await first.wait_published(3)
        first.puback(1)
        await bench.wait_done(1)
        lost_us = time.time_ns() // 1000
        first.lose("connection reset")  # rows 2 and 3 were in flight: never acknowledged
        second = await bench.upstream.session(2)
        await second.wait_published(2)
        # The check learns since when the recipient has been reachable (a held row leaving on
        # time is judged by it, sendtime_rules.py): from the first session, then after the loss.
        first_up, again_up = bench.opened[0], bench.opened[-1]
        assert first_up is not None and again_up is not None
        assert first_up < lost_us <= again_up <= time.time_ns() // 1000
        # Rows 2 and 3 were published and never acknowledged: they may have arrived, and the
        # check is told so (its entry must not say they went to no one).
        assert bench.tried[0] == set() and bench.tried[-1] == {rows[1].id, rows[2].id}
        assert [p.payload for p in second.published] == [r.payload for r in rows[1:]]
        second.puback()
        await bench.wait_done(3)
        assert forwarder.state.connected
        running.cancel()
    assert forwarder.state.reconnects == 1
    assert await bench.waiting() == []


async def test_rows_a_forwarder_before_this_one_may_have_sent_are_named_to_the_check(
    bench: Bench,
) -> None:
    """Rows in the outbox when a forwarder is made (a restart, a reload that made it anew) may
    have been published by the one before, their acknowledgement lost; rows committed since may
    not have."""
    earlier = await bench.queue(["maintenance"] * 2)
    box = _Outbox(bench)
    await box.load()
    assert box.last_id == earlier[-1].id
    forwarder = bench.forwarder(box=box)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(2)
        link.puback()
        await bench.wait_done(2)
        spec = (3, RECIPIENT.name, "baeckerei-schmidt", "oven-1", "maintenance", "o/3", b"3", 0)
        later = await bench.store.transaction(lambda conn: box.insert(conn, [spec]))
        assert box.last_id == later[-1].id
        forwarder.offer(later)  # as the outbox does after the pipeline's commit
        await link.wait_published(3)
        link.puback()
        await bench.wait_done(3)
        running.cancel()
    assert bench.tried == [{r.id for r in earlier}, set()]


async def _handed_run(bench: Bench, record: Path, rows: int) -> Forwarder:
    """A start on the outbox as it is, its forwarder sending the ``rows`` rows waiting."""
    box = _Outbox(bench, handed=record)
    await box.load()
    forwarder = bench.forwarder(box=box)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(len(bench.upstream.links) + 1)
        await link.wait_published(rows)
        link.puback()
        await bench.wait_done(sum(n for _, n in bench.done) + rows)
        running.cancel()
    return forwarder


async def test_rows_queued_while_the_recipient_was_away_all_run_were_not_sent_before(
    bench: Bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the record of what was handed over (handed.py), a restart names to the check only
    the rows an earlier run may have handed over: not those queued after the last one it did,
    while the recipient was away (before, every row present at the start counted)."""
    monkeypatch.setattr(handed_module, "LEASE_AHEAD", 0)  # a lease reaching no further
    record = tmp_path / "handed.json"
    first = await bench.queue(["maintenance"] * 2)
    await _handed_run(bench, record, 2)  # the first start with the record: its floor is 2
    away = await bench.queue(["maintenance"] * 3)  # queued while the recipient is away
    forwarder = await _handed_run(bench, record, 3)  # the next start sends them, leased first
    assert not forwarder.maybe_sent(away)
    assert forwarder.maybe_sent(first) == {r.id for r in first}  # up to the floor
    later = await bench.queue(["maintenance"] * 2)  # away again
    box = _Outbox(bench, handed=record)
    await box.load()  # a third start: what the second handed over counts, nothing after it
    forwarder = bench.forwarder(box=box)
    assert forwarder.maybe_sent(away) == {r.id for r in away}
    assert not forwarder.maybe_sent(later)
    # Without the record, as before: every row there counts.
    box = _Outbox(bench)
    await box.load()
    assert bench.forwarder(box=box).maybe_sent(later) == {r.id for r in later}


async def test_a_row_offered_in_the_committing_turn_leaves_only_under_a_written_lease(
    bench: Bench, tmp_path: Path
) -> None:
    """Above its lease, an offered row goes to the task, which writes the lease first; never is
    a row handed over that a restart could count as never sent."""
    record = tmp_path / "handed.json"
    box = _Outbox(bench, handed=record)
    await box.load()
    forwarder = bench.forwarder(in_turn=True, box=box)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await _parked(forwarder)
        rows = await bench.queue(["maintenance"] * 3)
        forwarder.offer(rows)
        assert link.published == []  # above the lease: not in this turn
        await link.wait_published(3)
        leases = orjson.loads(record.read_bytes())["leases"]
        assert leases[RECIPIENT.name] >= rows[-1].id  # written before they were handed over
        link.puback()
        await bench.wait_done(3)
        await _parked(forwarder)
        more = await bench.queue(["maintenance"] * 2)
        forwarder.offer(more)  # under the lease now: in the committing turn, as before
        assert [p.payload for p in link.published[3:]] == [r.payload for r in more]
        running.cancel()


async def test_a_row_held_to_the_end_of_its_unit_leaves_then_and_holds_up_no_other(
    bench: Bench,
) -> None:
    release_at = time.time_ns() // 1000 + 400_000  # 0.4 s from now
    base = (RECIPIENT.name, "baeckerei-schmidt", "oven-1")
    specs = [
        (1, *base, "hourly", "ovens/0", b"0", 0, None, None, None, False, release_at),
        (2, *base, "maintenance", "ovens/1", b"1", 0, None, None, None, False, None),
    ]
    held, free = await bench.store.transaction(functools.partial(outbox.insert, rows=specs))
    forwarder = bench.forwarder()
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(1)
        assert [p.payload for p in link.published] == [free.payload]  # not held up
        await link.wait_published(2)
        assert time.time_ns() // 1000 >= release_at  # not a moment before its time
        assert [p.payload for p in link.published] == [free.payload, held.payload]
        link.puback()
        await bench.wait_done(2)
        running.cancel()
    assert await bench.waiting() == []


async def _parked(forwarder: Forwarder) -> None:
    """Until the forwarder's task waits for offers, with nothing else to do."""
    async with asyncio.timeout(10):
        while forwarder._parked is None:
            await asyncio.sleep(0)


async def test_offered_rows_leave_in_the_committing_turn_while_the_forwarder_waits(
    bench: Bench,
) -> None:
    forwarder = bench.forwarder(in_turn=True)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await _parked(forwarder)
        rows = await bench.queue(["maintenance"] * 3)
        forwarder.offer(rows)
        # Published before offer returned: no turn of the loop, no wake-up of the task.
        assert [p.payload for p in link.published] == [r.payload for r in rows]
        assert forwarder.state.in_flight == 3 and forwarder._parked is link
        link.puback()
        await bench.wait_done(3)
        # A row the check cannot pass at a look goes to the task, which withholds it.
        bench.refused_grants.add("withdrawn")
        (refused,) = await bench.queue(["withdrawn"])
        forwarder.offer([refused])
        assert len(link.published) == 3
        await bench.wait_done(4)
        running.cancel()
    assert [(r.id, why.code) for r, why in bench.withheld] == [(refused.id, "consent_withdrawn")]
    assert len(link.published) == 3
    assert await bench.waiting() == []


async def test_a_publish_that_raises_in_the_committing_turn_stays_out_of_the_pipeline(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``offer`` runs in the pipeline's writer after its commit: a publish that raises there
    (a bug, or a topic a client library refuses) must cost that row only, never the writer."""
    forwarder = bench.forwarder(in_turn=True)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await _parked(forwarder)
        rows = await bench.queue(["maintenance"] * 3)
        sent = FakeLink.send

        def send(
            self: FakeLink, topic: str, payload: bytes, qos: int, done: Any, *, retain: bool = False
        ) -> None:
            if payload == rows[1].payload:
                raise ValueError("refused")
            sent(self, topic, payload, qos, done, retain)

        monkeypatch.setattr(FakeLink, "send", send)
        free = forwarder._window.free
        forwarder.offer(rows)  # does not raise
        assert [p.payload for p in link.published] == [rows[0].payload, rows[2].payload]
        assert forwarder.state.in_flight == 2 and forwarder._window.free == free - 2
        link.puback()
        await bench.wait_done(2)
        running.cancel()
    assert await bench.waiting() == [rows[1].id]  # kept for the next session, not lost


async def test_a_failed_delete_is_retried_and_its_rows_are_not_sent_again(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = [OSError("disk full")]
    delete = Outbox.delete

    async def failing_once(self: Outbox, ids: Sequence[int], *, durable: bool = True) -> set[int]:
        if failures:
            raise failures.pop()
        return await delete(self, ids, durable=durable)

    monkeypatch.setattr(Outbox, "delete", failing_once)
    forwarder = bench.forwarder()
    rows = await bench.queue(["maintenance"] * 3)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(3)
        link.puback()
        await bench.wait_done(3)  # after the failure, the retry deleted them
        running.cancel()
    assert failures == []
    assert [p.payload for p in link.published] == [r.payload for r in rows]  # once each
    assert await bench.waiting() == []


async def test_rows_deleted_at_a_stop_leave_the_queue_as_counted(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop (a reload that changes the recipient) deletes the acknowledged rows whose batched
    delete has not run: they leave the queue's count too, or the depth would stay high for good
    and later releases be withheld for a full queue that is not."""
    monkeypatch.setattr(acked_module, "DELETE_AFTER_S", 3600.0)  # only the stop deletes
    forwarder = bench.forwarder()
    rows = await bench.queue(["maintenance"] * 3)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        link = await bench.upstream.session(1)
        await link.wait_published(3)
        link.puback()
        async with asyncio.timeout(10):
            while forwarder.state.sent < 3:  # the PUBACKs' callbacks run on the next turns
                await asyncio.sleep(0.005)
        running.cancel()
    assert bench.done == []  # the batched delete never ran
    await forwarder.delete_delivered()
    assert bench.done == [("baeckerei-schmidt", 3)]
    assert await bench.waiting() == []
    assert [p.payload for p in link.published] == [r.payload for r in rows]


async def test_a_send_time_check_that_fails_stops_sending_not_the_gateway(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk (or a write lock held elsewhere) refusing the send-time check's record, then
    the check failing on a bug: the rows are not sent unchecked, the forwarder's task does not
    end (its group is the gateway's: a bug met at every start would be a crash loop), and a new
    session sends them once the check passes."""
    full = "einblick.db: write failed: database or disk is full"
    failures: list[Exception] = [
        RuntimeError("a bug in the send-time check"),
        StoreError(full),
        StoreError(full),  # the disk still full at the retry
    ]
    check = bench.at_send
    reachable: list[int | None] = []

    async def failing_once(
        rows: Sequence[OutboxRow], reachable_us: int | None, tried: Callable[[OutboxRow], bool]
    ) -> Settled:
        reachable.append(reachable_us)
        if failures:
            raise failures.pop()
        return await check(rows, reachable_us, tried)

    bench.at_send = failing_once  # type: ignore[method-assign]
    forwarder = bench.forwarder()
    rows = await bench.queue(["maintenance"] * 3)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(forwarder.run(), name="forwarder-under-test")
        fourth = await bench.upstream.session(4)
        await fourth.wait_published(3)
        fourth.puback()
        await bench.wait_done(3)
        assert not running.done()
        running.cancel()
    assert [k.published for k in bench.upstream.links[:3]] == [[], [], []]  # nothing unchecked
    assert [p.payload for p in fourth.published] == [r.payload for r in rows]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # Said once while the same failure lasts, and again for another one.
    assert sum("nothing is sent while the database fails" in e for e in errors) == 1
    assert sum("nothing is sent while the send-time check fails" in e for e in errors) == 1
    assert "a bug in the send-time check" in caplog.text
    # Sessions this side ended (the check refused) leave the recipient reachable since the
    # first: a held row due meanwhile still leaves on time (sendtime_rules.py).
    assert len(reachable) == 4 and reachable[0] is not None and len(set(reachable)) == 1
    assert await bench.waiting() == []


async def test_what_an_earlier_attempt_may_have_delivered_is_only_what_could_have_left(
    bench: Bench,
) -> None:
    """A row held beyond the moment the forwarder was made was not published by any before it;
    a publish refused before it was written (paho refuses the topic) did not leave either."""
    box = _Outbox(bench)
    box.last_id = 4  # as loaded at a start: rows up to 4 were there
    forwarder = bench.forwarder(box=box)
    now_us = time.time_ns() // 1000
    base = (RECIPIENT.name, "baeckerei-schmidt", "oven-1", "maintenance", "t", b"x", 0)
    rows = [
        OutboxRow(1, 1, *base),
        OutboxRow(2, 2, *base, release_at=now_us - 1_000_000),  # due before: may have left
        OutboxRow(3, 3, *base, release_at=now_us + 3_600_000_000),  # held an hour on: not yet
        OutboxRow(5, 5, *base),  # committed since
        OutboxRow(6, 6, *base),
        OutboxRow(7, 7, *base),
        OutboxRow(8, 8, *base),
        OutboxRow(9, 9, *base),
    ]
    forwarder._window.free -= 4  # as _send takes a slot per publish
    forwarder._published(6, 0.0, "baeckerei-schmidt", 1, ConnectionLost("connection reset"))
    forwarder._published(7, 0.0, "baeckerei-schmidt", 1, MqttError("topic refused by paho"))
    forwarder._published(8, 0.0, "baeckerei-schmidt", 1, NotSent("t: not connected"))
    forwarder._published(9, 0.0, "baeckerei-schmidt", 1, None)  # acknowledged, delete pending
    assert forwarder.maybe_sent(rows) == {1, 2, 6, 9}
