"""What a page costs the reader: a customer's withheld entries and their newest entry are found
without walking their whole log (the portal asks both at every page and live update).

The work is counted in SQLite's own steps (a progress handler called every 100 virtual machine
instructions), so the figures do not depend on the machine's speed or load.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.log.reader import Reader
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"
ENTRIES = 3000
WITHHELD = (40, 1500, 2990)  # the only withheld entries of C, by draft number


def _draft(i: int, customer: str) -> object:
    # make_draft withholds every i % 4 == 3; here only the chosen few are withheld.
    return make_draft(i, customer=customer, outcome="withheld" if i in WITHHELD else "shared")


@pytest.fixture
def sparse(log: Log) -> Log:
    """C's 3,000 entries (3 withheld) interleaved with another customer's, all withheld."""
    for start in range(0, ENTRIES, 500):
        drafts = []
        for i in range(start, start + 500):
            drafts.append(_draft(i, C))
            drafts.append(make_draft(i, customer=OTHER, outcome="withheld"))
        log.write(drafts)  # type: ignore[arg-type]
    return log


@pytest.fixture
def mine(sparse: Log) -> Iterator[Reader]:
    reader = Reader.open(sparse.path, customer=C)
    yield reader
    reader.close()


def _steps(reader: Reader, call: Callable[[], object]) -> tuple[object, int]:
    """``call``'s result and its steps, counted on a second call: the first one also reads the
    log's bodies into the reader (once per reader, not per page)."""
    call()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    reader._conn.set_progress_handler(count, 100)
    try:
        return call(), steps
    finally:
        reader._conn.set_progress_handler(None, 100)


def _without_index(path: Path, tmp: Path) -> Path:
    """A copy of the log without migration 9's index: what every page paid before it."""
    copy = tmp / "unindexed.db"
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.execute("DROP INDEX entries_withheld")
    target.commit()
    target.close()
    return copy


def test_withheld_entries_come_from_their_index_not_a_walk_of_the_log(
    mine: Reader, sparse: Log, tmp_path: Path
) -> None:
    withheld = mine.filter_for(outcome="withheld")
    rows, steps = _steps(mine, lambda: mine.page(withheld, limit=100))
    assert [r.seq for r in rows] == [2 * i + 1 for i in reversed(WITHHELD)]  # type: ignore[attr-defined]
    assert all(r.customer == C and r.outcome == "withheld" for r in rows)  # type: ignore[attr-defined]
    older, _ = _steps(mine, lambda: mine.page(withheld, before=2 * 1500 + 1, limit=100))
    assert [r.seq for r in older] == [2 * 40 + 1]  # type: ignore[attr-defined]
    # The same page without the index walks C's 3,000 entries: the index must make it far
    # cheaper (measured: 1 step against ~210).
    slow = Reader.open(_without_index(sparse.path, tmp_path), customer=C)
    try:
        same, walked = _steps(slow, lambda: slow.page(withheld, limit=100))
    finally:
        slow.close()
    assert [r.seq for r in same] == [r.seq for r in rows]  # type: ignore[attr-defined]
    assert walked > 20 * steps, (steps, walked)


def test_a_customers_withheld_page_reads_the_index_in_log_order(sparse: Log) -> None:
    # OTHER's 3,000 entries are all withheld: by index order SQLite would sort them all.
    theirs = Reader.open(sparse.path, customer=OTHER)
    statements: list[str] = []
    theirs._conn.set_trace_callback(statements.append)
    try:
        rows = theirs.page(theirs.filter_for(outcome="withheld"), limit=3)
    finally:
        theirs._conn.set_trace_callback(None)
    try:
        assert [r.seq for r in rows] == [6000, 5998, 5996]
        sql = next(s for s in statements if "ORDER BY" in s)
        plan = " ".join(str(r[3]) for r in theirs._conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "entries_withheld" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        theirs.close()


def test_the_newest_entry_of_a_customer_is_one_step_down_their_index(mine: Reader) -> None:
    latest, steps = _steps(mine, mine.latest_seq)
    assert latest == 2 * (ENTRIES - 1) + 1  # C's last draft, written before OTHER's last
    # max(seq) over the chain read all 3,000 of C's index entries (~300 steps of 100).
    assert steps < 5, steps


def test_a_customer_without_entries_has_no_newest_entry(sparse: Log) -> None:
    reader = Reader.open(sparse.path, customer="nobody-yet")
    try:
        assert reader.latest_seq() == 0
        assert reader.page(reader.filter_for(outcome="withheld")) == []
    finally:
        reader.close()


def test_unbound_the_newest_entry_is_the_logs(sparse: Log) -> None:
    reader = Reader.open(sparse.path)
    try:
        assert reader.latest_seq() == 2 * ENTRIES
        rows = reader.page(reader.filter_for(outcome="withheld"), limit=5)
        assert [r.seq for r in rows] == [6000, 5998, 5996, 5994, 5992]
    finally:
        reader.close()
