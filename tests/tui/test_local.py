"""The TUI's local source (tui/local.py) over a real log of 600 entries, more than two strides of
its sparse index: pages read in any cut agree with one read of everything, filters and finds
agree with the unfiltered rows, new entries are taken in by seq, a customer view holds only its
customer, and the overview counts what the rows show."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.bench.sample import NAMES, T0, SampleLog
from tests.tui.conftest import NOW
from tui.local import STRIDE, LocalSource, LocalView
from tui.model import Row
from tui.query import EVERYTHING, parse_query
from tui.source import SourceError


@pytest.fixture
async def source(sample: SampleLog) -> AsyncIterator[LocalSource]:
    opened = LocalSource(sample.path, names=NAMES)
    await opened.open()
    yield opened
    await opened.close()


async def _all(view: LocalView) -> list[Row]:
    return await view.rows(0, view.count)


async def test_pages_in_any_cut_agree_with_one_read_of_everything(source: LocalSource) -> None:
    view = await source.view(EVERYTHING)
    assert view.count == 600 > 2 * STRIDE
    everything = await _all(view)
    assert len({r.seq for r in everything}) == 600
    for size in (7, 100, STRIDE, STRIDE + 1):
        paged: list[Row] = []
        for start in range(0, view.count, size):
            paged += await view.rows(start, size)
        assert [r.seq for r in paged] == [r.seq for r in everything], size
    assert await view.rows(600, 10) == [] and await view.rows(590, 100) == everything[590:]


async def test_a_filter_and_a_find_agree_with_the_unfiltered_rows(source: LocalSource) -> None:
    everything = await _all(await source.view(EVERYTHING))
    withheld = await source.view(parse_query("decision:withheld"))
    expected = [r.seq for r in everything if r.outcome == "withheld"]
    assert expected and [r.seq for r in await _all(withheld)] == expected
    # A device by its human name ("Backofen 1") as well as by its id.
    by_name = await _all(await source.view(parse_query("device:backofen")))
    assert {r.device for r in by_name} == {"oven-1", "oven-2"}
    assert len(by_name) == sum(r.device in {"oven-1", "oven-2"} for r in everything)
    # Find highlights within the view and jumps between hits.
    view = await source.view(EVERYTHING)
    find = parse_query("device:van-01")
    hits = [i for i, r in enumerate(everything) if r.device == "van-01"]
    assert await view.matches(find) == len(hits)
    first = await view.locate(find, None, True)
    assert first == hits[0]
    assert await view.locate(find, first, True) == hits[1]
    assert await view.locate(find, hits[-1], True) is None
    marked = await view.rows(0, 50, find)
    assert [r.hit for r in marked] == [r.device == "van-01" for r in everything[:50]]


async def test_new_entries_are_taken_in_by_seq(sample: SampleLog, source: LocalSource) -> None:
    view = await source.view(EVERYTHING)
    before = await _all(view)
    assert await view.refresh() == 0  # nothing new
    sample.add(300, start=T0 + timedelta(hours=1))
    assert await view.refresh() == 300
    after = await _all(view)
    assert after[:600] == before and len(after) == 900
    # Oldest first, as the log was written: the new ones follow.
    assert [r.seq for r in after] == sorted(r.seq for r in after)
    # The index grown row by row reads as the one built by a scan.
    for size in (STRIDE - 1, STRIDE + 1):
        paged: list[Row] = []
        for start in range(0, view.count, size):
            paged += await view.rows(start, size)
        assert paged == after, size


async def test_a_customer_view_holds_only_its_customer(sample: SampleLog) -> None:
    everyone = LocalSource(sample.path, names=NAMES)
    await everyone.open()
    rows = await _all(await everyone.view(EVERYTHING))
    await everyone.close()
    other = next(r.seq for r in rows if r.customer == "spedition-weber")
    bakery = LocalSource(sample.path, customer="baeckerei-schmidt", names=NAMES)
    await bakery.open()
    try:
        mine = await _all(await bakery.view(EVERYTHING))
        assert mine and {r.customer for r in mine} == {"baeckerei-schmidt"}
        assert len(mine) == sum(r.customer == "baeckerei-schmidt" for r in rows)
        assert await bakery.detail(other) is None
        detail = await bakery.detail(mine[0].seq)
        assert detail is not None and detail.link_valid
        with pytest.raises(SourceError, match="this view shows customer baeckerei-schmidt"):
            await bakery.act("spedition-weber", "delivery-tracking", "withdraw", "Anna")
        with pytest.raises(SourceError, match="needs the running gateway"):
            await bakery.act("baeckerei-schmidt", "maintenance", "withdraw", "Anna")
    finally:
        await bakery.close()


async def test_the_overview_counts_what_the_rows_show(source: LocalSource) -> None:
    rows = await _all(await source.view(EVERYTHING))
    overview = await source.overview(NOW)
    assert overview.status is None  # no control socket: no status, no guess
    decisions = [r for r in rows if r.kind == "decision"]
    sent = Counter(r.recipient for r in decisions if r.outcome != "withheld")
    withheld = Counter(r.recipient for r in decisions if r.outcome == "withheld")
    names = {r.recipient for r in decisions}
    assert [s.recipient for s in overview.recipients] == sorted(names)
    assert {s.recipient: s.last_day for s in overview.recipients} == {n: sent[n] for n in names}
    assert {s.recipient: s.withheld_day for s in overview.recipients} == {
        n: withheld[n] for n in names
    }
    assert sum(sent.values()) > 0 and sum(withheld.values()) > 0
    for stats in overview.recipients:
        assert sum(stats.buckets) == stats.last_day
        assert stats.last_hour == stats.last_day  # the sample spans 20 minutes before NOW
        assert sum(stats.buckets[-2:]) == stats.last_hour  # the last hour: the last two buckets
        assert not set(stats.never_sent) & set(stats.fields_sent)
    later = await source.overview(NOW + timedelta(hours=2))
    assert [(s.last_hour, s.last_day) for s in later.recipients] == [
        (0, sent[s.recipient]) for s in later.recipients
    ]


async def test_a_missing_database_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no log database at"):
        await LocalSource(tmp_path / "none.db").open()
