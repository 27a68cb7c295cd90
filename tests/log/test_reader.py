"""The async read-only reader: keyset pages, filters, details with proof, stats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.errors import LogError
from gateway.log.reader import LogReader, Reader, row_passes
from tests.log.conftest import T0, Log, make_draft

C = "baeckerei-schmidt"


@pytest.fixture
def filled(log: Log) -> Log:
    log.write([make_draft(i, customer=C if i % 2 else "metallbau-huber") for i in range(40)])
    log.write([make_draft(i, customer=C) for i in range(40, 44)], checkpoint=False)
    return log


async def test_pages_are_keyset_and_complete(filled: Log) -> None:
    reader = await LogReader.open(filled.path)
    try:
        assert await reader.latest_seq() == 44
        seen: list[int] = []
        before = None
        while page := await reader.page(before=before, limit=7):
            seen += [r.seq for r in page]
            before = page[-1].seq
        assert seen == list(range(44, 0, -1))
        forward = await reader.page(after=40, limit=10)
        assert [r.seq for r in forward] == [41, 42, 43, 44]
    finally:
        await reader.close()


async def test_filters(filled: Log) -> None:
    reader = await LogReader.open(filled.path)
    try:
        rows = await reader.page(customer=C, outcome="withheld")
        assert rows and all(r.customer == C and r.outcome == "withheld" for r in rows)
        assert await reader.count(customer=C) == 24
        assert await reader.count(device="oven-1", customer=C) == len(
            await reader.page(device="oven-1", customer=C, limit=1000)
        )
        assert await reader.count(recipient="nobody") == 0
        texts = await reader.page(text="oven-2: Temperatur")
        assert texts and all(r.device == "oven-2" for r in texts)
    finally:
        await reader.close()


async def test_detail_carries_content_and_proof(filled: Log) -> None:
    reader = await LogReader.open(filled.path)
    try:
        detail = await reader.get(2)  # make_draft(1) for C: shared, with content
        assert detail.row.customer == C and detail.row.index == 0
        assert detail.content is not None and b"B-0001" in detail.content
        assert detail.topic == "schmidt/oven-1/telemetry"
        assert detail.checkpoint is not None and detail.checkpoint.signature_valid
        assert detail.checkpoint.key_fingerprint == filled.signer.fingerprint
        tail = await reader.get(44)
        assert tail.checkpoint is None  # not yet signed
        with pytest.raises(LogError, match="not found"):
            await reader.get(999)
    finally:
        await reader.close()


async def test_stats_over_a_window(filled: Log) -> None:
    reader = await LogReader.open(filled.path)
    try:
        stats = await reader.stats(T0, customer=C)
        assert sum(stats.outcomes.values()) == 24
        assert stats.messages["wartung-gmbh"] == 24
        assert stats.fields_sent["wartung-gmbh"] == stats.outcomes["shared"]
        later = await reader.stats(T0 + timedelta(milliseconds=10 * 40))
        assert sum(later.outcomes.values()) == 4
        cps = await reader.checkpoints(customer=C)
        assert cps and all(c.signature_valid for c in cps)
    finally:
        await reader.close()


OTHER = "metallbau-huber"


async def test_a_reader_bound_to_a_customer_never_returns_another_customers_rows(
    filled: Log,
) -> None:
    reader = await LogReader.open(filled.path, customer=C)
    try:
        mine = await reader.page(limit=1000)
        assert len(mine) == 24 and {r.customer for r in mine} == {C}
        # asking for the other customer explicitly still finds nothing of theirs
        assert await reader.page(customer=OTHER, limit=1000) == []
        assert await reader.count(customer=OTHER) == 0
        assert await reader.count() == 24
        assert await reader.latest_seq() == 44  # the newest entry is C's
        with pytest.raises(LogError, match="another customer's"):
            await reader.get(1)  # make_draft(0) is the other customer's
        assert (await reader.get(2)).row.customer == C
        assert await reader.checkpoints(customer=OTHER) == []
        cps = await reader.checkpoints(limit=1000)
        assert cps and {c.customer for c in cps} == {C}
        stats = await reader.stats(T0)
        assert sum(stats.outcomes.values()) == 24
        assert sum((await reader.stats(T0, customer=OTHER)).outcomes.values()) == 0
        bodies = await reader.run(reader.sync.bodies)
        assert bodies and {b.customer for b in bodies} == {C}
        assert set(await reader.run(reader.sync.chain_names)) == {
            await reader.run(reader.sync.chain_id, C)
        }
    finally:
        await reader.close()


def test_the_sync_reader_pages_the_same_rows(filled: Log) -> None:
    reader = Reader.open(filled.path)
    try:
        flt = reader.filter_for(customer=C)
        rows = reader.page(flt, limit=1000)
        assert [r.seq for r in rows] == [r.seq for r in reader.page(flt, limit=1000)]
        assert len(rows) == reader.count(flt) == 24
        assert reader.count() == 44
    finally:
        reader.close()


def test_a_row_passes_in_python_exactly_the_filters_it_passes_in_sql(log: Log) -> None:
    # Devices, recipients and outcomes that differ, and texts in two languages and two cases.
    drafts = [
        make_draft(
            i,
            customer=(C, OTHER)[i % 2],
            recipient=("wartung-gmbh", "energie-cloud")[i % 3 % 2],
            outcome=("shared", "withheld", "altered")[i % 3],
            text_de=f"oven-{i % 3}: Temperatur geteilt",
            text_en=f"oven-{i % 3}: TEMPERATURE shared" if i % 5 else "nothing",
        )
        for i in range(60)
    ]
    log.write(drafts)
    reader = Reader.open(log.path)
    try:
        every = reader.page(reader.filter_for(), limit=1000)
        assert len(every) == 60
        filters: list[dict[str, str | None]] = [{}]
        for name, values in (
            ("customer", (C, OTHER, "nobody")),
            ("device", ("oven-0", "oven-2", "oven", "nobody")),
            ("recipient", ("wartung-gmbh", "energie-cloud", "wartung")),
            ("outcome", ("shared", "altered", "withheld")),
            ("text", ("temperatur", "TEMPERATURE", "Oven-1:", "nothing", "absent")),
        ):
            filters += [{**f, name: v} for f in filters for v in values if len(f) < 2]
        assert len(filters) > 100
        for f in filters:
            in_sql = [r.seq for r in reader.page(reader.filter_for(**f), limit=1000)]
            in_python = [r.seq for r in every if row_passes(r, **f)]
            assert in_python == in_sql, f
    finally:
        reader.close()
