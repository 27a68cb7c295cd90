"""Pages of the log: keyset pages by seq, counts, the sparse index, find marks, jump by time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from gateway.log.entry import us_from_at
from gateway.log.reader import Reader
from tests.log.conftest import T0, Log
from tests.log.filled import C, fill


@pytest.fixture
def reader(log: Log) -> Iterator[Reader]:
    fill(log)
    opened = Reader.open(log.path)
    yield opened
    opened.close()


def test_counts_over_seq_ranges(reader: Reader) -> None:
    assert reader.latest_seq() == 44
    assert reader.count() == 44
    assert reader.count(lo=41) == 4
    assert reader.count(lo=1, hi=11) == 10
    mine = reader.filter_for(customer=C)
    assert reader.count(mine) == 24
    withheld = reader.filter_for(outcome="withheld")
    assert reader.count(mine, find=withheld) == 11  # odd i with i % 4 == 3, i < 44


def test_the_sparse_index_marks_every_stride(reader: Reader) -> None:
    assert reader.marks(None, 44, 10) == [1, 11, 21, 31, 41]
    mine = reader.filter_for(customer=C)
    # C's entries are seq 2, 4, ..., 40, then 41 to 44: every 5th of them.
    assert reader.marks(mine, 44, 5) == [2, 12, 22, 32, 41]
    assert reader.seqs(mine, 36, 44) == [38, 40, 41, 42, 43, 44]


def test_lines_page_in_either_direction_and_mark_what_find_hits(reader: Reader) -> None:
    withheld = reader.filter_for(outcome="withheld")
    lines = reader.lines(None, lo=1, hi=8, limit=10, find=withheld)
    assert [ln.seq for ln in lines] == list(range(1, 9))
    assert [ln.seq for ln in lines if ln.hit] == [4, 8]
    newest = reader.lines(None, limit=3, newest_first=True)
    assert [ln.seq for ln in newest] == [44, 43, 42]
    assert [ln.seq for ln in reader.lines(None, lo=1, limit=2, skip=5)] == [6, 7]
    rows = reader.page(reader.filter_for(), before=10, limit=3)
    assert [r.seq for r in rows] == [9, 8, 7]
    assert [r.seq for r in reader.page(reader.filter_for(), after=42, limit=5)] == [43, 44]


def test_find_jumps_to_the_next_and_previous_hit(reader: Reader) -> None:
    withheld = reader.filter_for(outcome="withheld")
    assert reader.neighbour(None, withheld, 4, upto=44, forward=True) == 8
    assert reader.neighbour(None, withheld, 8, upto=44, forward=False) == 4
    assert reader.neighbour(None, withheld, 4, upto=44, forward=False) is None
    assert reader.neighbour(None, withheld, 40, upto=42, forward=True) is None  # past upto


def test_jump_by_time_finds_the_first_entry_at_or_after(reader: Reader) -> None:
    assert reader.first_seq_at(us_from_at(T0)) == 1
    assert reader.first_seq_at(us_from_at(T0 + timedelta(milliseconds=95))) == 11
    assert reader.first_seq_at(us_from_at(T0 + timedelta(days=1))) == 45  # after the last
