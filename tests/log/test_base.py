"""The reader's ground floor: a read-only connection, the customer restriction in SQL, names and
bodies, and filters that never leave the bound customer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import LogError
from gateway.log.reader import Reader
from gateway.log.results import EntryFilter, Match
from tests.log.conftest import ORIGIN, Log
from tests.log.filled import OTHER, C, fill


@pytest.fixture
def filled(log: Log) -> Log:
    return fill(log)


def test_a_missing_database_is_said_not_created(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no log database here"):
        Reader.open(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_the_reader_cannot_write(filled: Log) -> None:
    reader = Reader.open(filled.path)
    try:
        assert reader.origin == ORIGIN
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("DELETE FROM entries")
    finally:
        reader.close()


def test_names_and_bodies_of_a_bound_reader_are_its_customers_only(filled: Log) -> None:
    reader = Reader.open(filled.path, customer=C)
    try:
        assert list(reader.chain_names().values()) == [C]
        assert reader.chain_id(OTHER) is None  # not this reader's
        own = reader.chain_id(C)
        assert own is not None
        bodies = reader.bodies()
        assert bodies and {b.customer for b in bodies} == {C}
        assert all(b.texts["de"] and b.texts["en"] for b in bodies)
        assert reader.new_bodies() == []  # nothing stored since
        device = reader.atom_id("oven-1")
        assert device is not None and reader.atom(device) == "oven-1"
        assert reader.atom(None) is None
        with pytest.raises(LogError, match="not stored \\(or not this customer's\\)"):
            reader.body(10_000)
    finally:
        reader.close()


def test_a_filter_asking_for_another_customer_still_stays_within_the_bound_one(
    filled: Log,
) -> None:
    reader = Reader.open(filled.path, customer=C)
    try:
        theirs = EntryFilter(customers=(Match(exactly=(OTHER,)),))
        _, params = reader.where(theirs)
        assert C in params  # the restriction is in the SQL, whatever the filter says
        assert reader.count(theirs) == 0
        # Free text matches the folded name (the query parser folds the needle).
        contains = EntryFilter(devices=(Match(contains="ven-1"),))
        assert reader.count(contains) == reader.count(reader.filter_for(device="oven-1")) > 0
    finally:
        reader.close()


def test_a_reader_over_a_callers_connection_sees_its_transaction(filled: Log) -> None:
    conn = sqlite3.connect(filled.path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        reader = Reader.over(conn, filled.path)
        assert reader.origin == ORIGIN and reader.count() == 44
        conn.execute("DELETE FROM content WHERE seq = 2")  # what an erasure does, unfinished
        assert reader.entry(2) is not None and not reader.entry(2).content_held  # type: ignore[union-attr]
        conn.execute("ROLLBACK")
    finally:
        conn.close()
