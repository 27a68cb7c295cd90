"""Counts over many entries: statistics, report data, what an erasure touches or an audit
compares; a bound reader counts only its customer's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from gateway.log.entry import us_from_at
from gateway.log.reader import Reader
from tests.log.conftest import T0, Log
from tests.log.filled import OTHER, C, fill


@pytest.fixture
def filled(log: Log) -> Log:
    return fill(log)


@pytest.fixture
def reader(filled: Log) -> Iterator[Reader]:
    opened = Reader.open(filled.path)
    yield opened
    opened.close()


def test_stats_count_messages_fields_and_outcomes_in_a_window(reader: Reader) -> None:
    stats = reader.stats(T0)
    assert sum(stats.outcomes.values()) == 44
    assert stats.outcomes["withheld"] == 11  # i % 4 == 3 for i < 44
    assert stats.messages["wartung-gmbh"] == 44
    assert stats.fields_sent["wartung-gmbh"] == stats.outcomes["shared"]  # one field each
    later = reader.stats(T0 + timedelta(milliseconds=400))
    assert sum(later.outcomes.values()) == 4


def test_recipient_counts_per_time_bucket(reader: Reader) -> None:
    counts = reader.recipient_counts(us_from_at(T0), bucket_us=100_000)  # 100 ms buckets
    per_bucket: dict[int, int] = {}
    for row in counts:
        per_bucket[row.bucket] = per_bucket.get(row.bucket, 0) + row.count
    assert per_bucket == {0: 10, 1: 10, 2: 10, 3: 10, 4: 4}
    assert sum(n for _, _, _, n in reader.body_counts(us_from_at(T0))) == 44
    assert reader.checkpoint_floor(us_from_at(T0)) == 0  # none signed before the first entry


def test_report_range_groups_a_customers_entries_by_body(reader: Reader) -> None:
    chain = reader.chain_id(C)
    assert chain is not None and reader.chain_id("nobody") is None
    groups, singles = reader.report_range(chain, 0, 0, 1 << 62)
    data = reader.report_from(groups, singles, known=True)
    assert data.known and sum(group.entries for group in data.groups) == 24
    assert all(body["customer"] == C for body, _, _, _ in data.groups)
    # Bounded by tree index: the report counts only what its verification covered.
    first_ten, _ = reader.report_range(chain, 0, 0, 10)
    assert sum(count for count, _, _ in first_ten.values()) == 10


def test_what_an_erasure_touches(reader: Reader) -> None:
    chain = reader.chain_id(C)
    assert chain is not None
    device = reader.atom_id("oven-1")
    held = reader.held_content(chain)
    assert 0 < held < 24  # withheld entries hold no content
    assert reader.held_content(chain, device) < held
    assert reader.recipients_sent(chain) == {"wartung-gmbh"}
    assert reader.recipients_sent(chain, device) == {"wartung-gmbh"}


def test_a_bound_reader_tallies_only_its_customer(filled: Log, reader: Reader) -> None:
    theirs = reader.chain_id(C)  # read unbound
    assert theirs is not None
    reader = Reader.open(filled.path, customer=OTHER)
    try:
        assert sum(reader.stats(T0).outcomes.values()) == 20
        rows = reader.entries_with_content()
        assert len(rows) == 20 and all(body["customer"] == OTHER for _, _, body, _, _ in rows)
        assert reader.chain_id(C) is None  # not this reader's
        assert reader.report_range(theirs, 0, 0, 1 << 62) == ({}, [])
    finally:
        reader.close()
