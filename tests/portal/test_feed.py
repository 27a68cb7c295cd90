"""A customer's live streams share one read of the log: twenty streams asking at once cause
one read, each keeps the rows its filters pass, a flood jumps to the newest rows, and another
customer's rows never enter (the feed reads through the reader bound to its customer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.log.keys import Signer
from gateway.log.reader import LogReader
from gateway.operations.portal.feed import SCREEN, Feed, Feeds
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = Log(tmp_path / "log.db", Signer.generate(tmp_path / "log.key"))
    yield opened
    opened.close()


@pytest.fixture
async def reader(log: Log) -> AsyncIterator[LogReader]:
    opened = await LogReader.open(log.path, customer=C)
    yield opened
    await opened.close()


def _customer(i: int) -> str:
    return OTHER if i % 3 == 2 else C


def _write(log: Log, first: int, count: int) -> None:
    # Two of every three drafts are C's; make_draft withholds every fourth (i % 4 == 3).
    log.write([make_draft(i, customer=_customer(i)) for i in range(first, first + count)])


def _mine(upto: int, *, withheld: bool = False) -> list[int]:
    """C's seqs among the first ``upto`` drafts (seq = draft number + 1)."""
    return [i + 1 for i in range(upto) if _customer(i) == C and (not withheld or i % 4 == 3)]


async def test_twenty_streams_asking_at_once_cause_one_read(log: Log, reader: LogReader) -> None:
    _write(log, 0, 40)
    feed = Feed(reader, 0, poll_s=3600.0)
    answers = await asyncio.gather(*(feed.since(0, {}, 50) for _ in range(20)))
    assert feed.reads == 1
    for rows, seen in answers:
        assert [r.seq for r in rows] == _mine(40)[-50:] and seen == _mine(40)[-1]
        assert {r.customer for r in rows} == {C}


async def test_each_stream_keeps_what_its_filters_pass(log: Log, reader: LogReader) -> None:
    _write(log, 0, 40)
    feed = Feed(reader, 0, poll_s=0.0, filtered=1)
    withheld, seen = await feed.since(0, {"outcome": "withheld"}, 50)
    assert withheld and all(r.outcome == "withheld" and r.customer == C for r in withheld)
    assert [r.seq for r in withheld] == _mine(40, withheld=True)
    assert seen == _mine(40)[-1]  # past the rows that did not pass, too
    other_device, _ = await feed.since(0, {"device": "oven-1"}, 50)
    assert {r.device for r in other_device} == {"oven-1"}
    found, _ = await feed.since(0, {"q": "TEMPERATUR an"}, 50)
    assert len(found) == len(_mine(40))  # the German text, casefolded
    assert await feed.since(0, {"device": "stall-7"}, 50) == ([], _mine(40)[-1])


async def test_new_rows_arrive_and_a_flood_jumps_to_the_newest(log: Log, reader: LogReader) -> None:
    _write(log, 0, 4)
    feed = Feed(reader, 0, poll_s=0.0)
    rows, seen = await feed.since(0, {}, 50)
    assert [r.seq for r in rows] == _mine(4) == [1, 2, 4] and seen == 4
    _write(log, 4, 200)
    rows, seen = await feed.since(seen, {}, 5)
    assert [r.seq for r in rows] == _mine(204)[-5:] and seen == _mine(204)[-1]
    assert feed.reads == 2
    # A stream that joins later from an older page also gets the newest screenful only.
    late, _ = await feed.since(2, {}, 3)
    assert [r.seq for r in late] == _mine(204)[-3:]


async def test_unfiltered_a_read_takes_a_screenful_filtered_every_row(
    log: Log, reader: LogReader
) -> None:
    feeds = Feeds()
    plain = feeds.join(C, reader, 0)
    _write(log, 0, 300)  # 200 of C's, 50 of them withheld
    rows, _ = await plain.since(0, {}, 50)
    assert [r.seq for r in rows] == _mine(300)[-50:] and len(plain.rows) == SCREEN
    # A filtering stream joins: from then on each read takes every new row (up to READ), so
    # the withheld rows among many shared ones all reach it.
    filtering = feeds.join(C, reader, _mine(300)[-1], filtered=True)
    assert filtering is plain and plain.filtered == 1
    plain.poll_s = 0.0
    _write(log, 300, 300)
    withheld, _ = await plain.since(_mine(300)[-1], {"outcome": "withheld"}, 1000)
    assert [r.seq for r in withheld] == [s for s in _mine(600, withheld=True) if s > 300]
    feeds.leave(C, filtered=True)
    assert plain.filtered == 0


async def test_a_feed_lives_while_one_of_its_customers_streams_is_open(reader: LogReader) -> None:
    feeds = Feeds()
    first = feeds.join(C, reader, 10)
    assert feeds.join(C, reader, 20) is first and first.streams == 2 and first.latest == 10
    feeds.leave(C)
    assert feeds.feeds == {C: first}
    feeds.leave(C)
    assert feeds.feeds == {}
    assert feeds.join(C, reader, 30) is not first
