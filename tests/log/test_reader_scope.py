"""A reader bound to a customer answers every question within that customer's chain: another
customer's entry, atom, chain, checkpoint or time resolves to nothing, as if it did not exist.
One test per method, on a log of two customers whose names, devices and recipients differ."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from gateway.log.entry import us_from_at
from gateway.log.reader import Reader
from tests.log.conftest import T0, Log, make_draft

MINE = "baeckerei-schmidt"
THEIRS = "metallbau-huber"


@pytest.fixture
def two(log: Log) -> Log:
    """Seq 1-10 are THEIRS (device press-geheim to geheim-empfaenger) at T0 + 0..90 ms, each
    batch checkpointed; seq 11-20 are MINE (oven-*, wartung-gmbh) an hour later."""
    log.write(
        [
            make_draft(i, customer=THEIRS, device="press-geheim", recipient="geheim-empfaenger")
            for i in range(10)
        ]
    )
    later = timedelta(hours=1)
    log.write(
        [
            make_draft(i, customer=MINE, at=T0 + later + timedelta(milliseconds=10 * i))
            for i in range(10)
        ]
    )
    return log


@pytest.fixture
def mine(two: Log) -> Iterator[Reader]:
    reader = Reader.open(two.path, customer=MINE)
    try:
        yield reader
    finally:
        reader.close()


@pytest.fixture
def everyone(two: Log) -> Iterator[Reader]:
    reader = Reader.open(two.path)
    try:
        yield reader
    finally:
        reader.close()


def test_an_atom_id_of_another_customer_resolves_to_nothing(mine: Reader, everyone: Reader) -> None:
    theirs = everyone.atom_id("press-geheim")
    their_recipient = everyone.atom_id("geheim-empfaenger")
    assert theirs is not None and their_recipient is not None
    assert everyone.atom(theirs) == "press-geheim"  # it exists; the unbound reader says so
    assert mine.atom(theirs) is None
    assert mine.atom(their_recipient) is None
    assert mine.atom_id("press-geheim") is None
    assert mine.atom_id("geheim-empfaenger") is None
    own = mine.atom_id("oven-1")
    assert own is not None and mine.atom(own) == "oven-1"
    assert mine.atom(own + 10_000) is None  # unknown: nothing, like another customer's


def test_an_entry_of_another_customer_resolves_to_nothing(mine: Reader) -> None:
    assert mine.entry(1) is None  # theirs
    found = mine.entry(11)
    assert found is not None and found.chain == MINE


def test_first_seq_at_counts_only_the_bound_customers_entries(
    mine: Reader, everyone: Reader
) -> None:
    assert everyone.first_seq_at(us_from_at(T0)) == 1
    # Their entries are earlier: the bound reader's first at T0 is its own first entry.
    assert mine.first_seq_at(us_from_at(T0)) == 11
    assert mine.first_seq_at(us_from_at(T0 + timedelta(hours=1, milliseconds=45))) == 16
    assert mine.first_seq_at(us_from_at(T0 + timedelta(days=1))) == 21  # after my last


def test_first_seq_at_of_a_customer_without_entries_is_nothing(two: Log) -> None:
    reader = Reader.open(two.path, customer="nobody")
    try:
        assert reader.first_seq_at(us_from_at(T0)) == 0
    finally:
        reader.close()


def test_checkpoint_floor_is_the_bound_customers_checkpoints(
    mine: Reader, everyone: Reader
) -> None:
    between = us_from_at(T0 + timedelta(minutes=30))  # after their checkpoint, before mine
    assert everyone.checkpoint_floor(between) > 0
    assert mine.checkpoint_floor(between) == 0
    assert mine.checkpoint_floor(us_from_at(T0 + timedelta(days=1))) > 0


def test_chain_ids_and_checkpoints_of_another_customer_are_not_found(
    mine: Reader, everyone: Reader
) -> None:
    assert mine.chain_id(THEIRS) is None
    assert set(mine.chain_names().values()) == {MINE}
    assert {cid for cid, _ in mine.checkpoint_rows()} == {mine.chain_id(MINE)}
    assert mine.checkpoint_infos(customer=THEIRS) == []
    assert all(info.customer == MINE for info in mine.checkpoint_infos())


def test_what_an_erasure_touches_of_another_chain_is_nothing(
    mine: Reader, everyone: Reader
) -> None:
    theirs = everyone.chain_id(THEIRS)
    assert theirs is not None
    assert everyone.recipients_sent(theirs) == {"geheim-empfaenger"}
    assert everyone.held_content(theirs) > 0
    assert mine.recipients_sent(theirs) == set()
    assert mine.held_content(theirs) == 0
    own = mine.chain_id(MINE)
    assert own is not None and mine.recipients_sent(own) == {"wartung-gmbh"}


def test_counts_pages_and_tallies_never_include_another_customer(
    mine: Reader, everyone: Reader
) -> None:
    assert mine.count() == 10 and mine.latest_seq() == 20
    assert {r.customer for r in mine.page(mine.filter_for())} == {MINE}
    theirs = everyone.chain_id(THEIRS)
    assert theirs is not None and everyone.report_range(theirs, 0, 0, 1 << 62)[0]
    assert mine.report_range(theirs, 0, 0, 1 << 62) == ({}, [])
    assert sum(n for _, _, _, n in mine.body_counts(0)) == 10
    assert {r.recipient_id for r in mine.recipient_counts(0, 10**9)} == {
        mine.atom_id("wartung-gmbh")
    }
    assert {seq for seq, *_ in mine.entries_with_content()} <= set(range(11, 21))
    assert {b.customer for b in mine.bodies()} == {MINE}


def test_a_bound_readers_page_walks_its_chain_without_sorting_it(mine: Reader) -> None:
    statements: list[str] = []
    mine._conn.set_trace_callback(statements.append)
    try:
        rows = mine.page(mine.filter_for(), limit=5)
    finally:
        mine._conn.set_trace_callback(None)
    assert [r.seq for r in rows] == [20, 19, 18, 17, 16]
    sql = next(s for s in statements if "ORDER BY" in s)
    plan = " ".join(str(r[3]) for r in mine._conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "TEMP B-TREE" not in plan, plan
