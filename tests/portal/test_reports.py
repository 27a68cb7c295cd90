"""The access report is built once per change of the customer's log and never served older than
the log a request arrived at: a new entry, a new checkpoint alone, or another customer's report
each make the next report a new one; while nothing changes, every session gets the one built.

Against the real portal (``tests.portal.box``: a real log written by the log's writer with the
box's key); a report's identity is its ``generated_at`` (the build's clock, to the µs).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.log.keys import Signer
from gateway.log.results import LogState
from gateway.operations.portal.reports import Policies, ReportCache, ReportState, report_state
from tests.log.conftest import T0, Log, make_draft
from tests.portal.box import MINE, THEIRS, Box, portal_box


async def _report(box: Box, client: aiohttp.ClientSession) -> dict[str, Any]:
    async with client.get(box.url + "/report.json") as response:
        assert response.status == 200
        data: dict[str, Any] = orjson.loads(await response.read())
    return data


async def test_a_report_is_kept_while_the_log_stands_and_a_new_entry_makes_the_next_one_new(
    tmp_path: Path,
) -> None:
    async with portal_box(tmp_path) as box:
        anna, second = await box.session(), await box.session()
        first = await _report(box, anna)
        assert first["verification"]["ok"] is True
        # Nothing changed: the same report, for this session and for another of the customer's.
        assert (await _report(box, anna))["generated_at"] == first["generated_at"]
        assert (await _report(box, second))["generated_at"] == first["generated_at"]

        box.log.write([make_draft(40, customer=MINE, device="kuehlraum-neu")])
        after = await _report(box, anna)
        assert after["generated_at"] != first["generated_at"]
        assert after["verification"]["entries"] == first["verification"]["entries"] + 1
        assert "kuehlraum-neu" in {d["id"] for d in after["devices"]}
        assert "kuehlraum-neu" not in {d["id"] for d in first["devices"]}


async def test_a_changed_policy_file_makes_the_next_report_state_it(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        anna = await box.session()
        first = await _report(box, anna)
        assert first["name"] == "Bäckerei Schmidt"
        policy = box.config.policies_path / "bakery.yaml"
        policy.write_text(
            policy.read_text(encoding="utf-8").replace(
                "name: Bäckerei Schmidt\n", "name: Bäckerei Schmidt & Töchter\n", 1
            ),
            encoding="utf-8",
        )
        after = await _report(box, anna)
        assert after["name"] == "Bäckerei Schmidt & Töchter"
        assert after["policy"]["version"] != first["policy"]["version"]


def test_policies_are_compiled_again_only_when_a_file_changes(tmp_path: Path) -> None:
    policy = tmp_path / "a.yaml"
    policy.write_text("one", encoding="utf-8")
    registry = tmp_path / "devices.json"  # absent at first: appearing is a change too
    seen: list[str] = []

    def compile_all() -> list[Any]:
        seen.append(policy.read_text(encoding="utf-8"))
        return []

    policies = Policies(compile_all)
    for _ in range(3):
        assert policies.get(MINE, [policy, registry]) is None
    assert policies.compiled == 1
    policy.write_text("two, longer", encoding="utf-8")
    policies.get(MINE, [policy, registry])
    registry.write_text("{}", encoding="utf-8")
    policies.get(MINE, [policy, registry])
    policies.get(MINE, [policy, registry])
    assert seen == ["one", "two, longer", "two, longer"]


async def test_a_checkpoint_alone_makes_the_next_report_new(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        anna = await box.session()
        box.log.write([make_draft(41, customer=MINE)], checkpoint=False)
        unsigned = await _report(box, anna)
        assert unsigned["verification"]["unsigned"] == 1
        box.log.writer.checkpoint(T0 + timedelta(seconds=60))  # no new entry, a new checkpoint
        signed = await _report(box, anna)
        assert signed["verification"]["unsigned"] == 0
        assert signed["verification"]["entries"] == unsigned["verification"]["entries"]


async def test_the_html_page_and_the_json_come_from_one_build_in_either_language(
    tmp_path: Path,
) -> None:
    async with portal_box(tmp_path) as box:
        anna = await box.session()
        data = await _report(box, anna)
        titles = {"de": "Was mit Ihren Daten geschah", "en": "What happened to your data"}
        for lang, title in titles.items():
            async with anna.get(f"{box.url}/report?lang={lang}") as response:
                page = await response.text()
            assert response.status == 200 and f"{title}: Bäckerei Schmidt</h1>" in page
        assert (await _report(box, anna))["generated_at"] == data["generated_at"]


async def test_red_team_a_kept_report_is_never_served_to_another_customer(
    tmp_path: Path,
) -> None:
    """Both customers ask in turn, and at once, while their logs stand still: each gets only
    their own report, though the first one asked is kept."""
    async with portal_box(tmp_path) as box:
        anna, huber = await box.session("anna"), await box.session("huber")
        mine = await _report(box, anna)
        theirs = await _report(box, huber)
        assert mine["customer"] == MINE and theirs["customer"] == THEIRS
        assert theirs["generated_at"] != mine["generated_at"]
        both = await asyncio.gather(*(_report(box, c) for c in (anna, huber) * 5))
        assert {r["customer"] for r in both[0::2]} == {MINE}
        assert {r["customer"] for r in both[1::2]} == {THEIRS}
        assert MINE not in orjson.dumps(both[1::2]).decode()
        assert THEIRS not in orjson.dumps(both[0::2]).decode()


def _state(customer: str, seq: int) -> ReportState:
    return ReportState(customer, LogState(seq, 1, 1), b"[]", None, None)


class _Log:
    """A log whose state the test moves, and builds that wait for the test's word."""

    def __init__(self) -> None:
        self.seq = 1
        self.release = asyncio.Event()
        self.release.set()
        self.building = asyncio.Event()

    async def state(self, customer: str) -> ReportState:
        return _state(customer, self.seq)

    async def build(self, customer: str) -> dict[str, Any]:
        covered = self.seq  # what the build reads, as the log stands when it reads
        self.building.set()
        await self.release.wait()
        return {"customer": customer, "covers": covered}


async def test_a_request_arriving_during_a_build_gets_a_build_begun_after_it_arrived() -> None:
    log, cache = _Log(), ReportCache()
    async with asyncio.TaskGroup() as group:

        def ask(customer: str = MINE) -> asyncio.Task[Any]:
            return group.create_task(
                cache.get(customer, lambda: log.state(customer), lambda: log.build(customer)),
                name=f"report-{customer}",
            )

        log.release.clear()
        early = ask()
        await log.building.wait()  # the first build has read the log at seq 1
        log.seq = 2  # an entry is committed, then three requests arrive
        late = [ask() for _ in range(3)]
        await asyncio.sleep(0)
        log.release.set()
        assert (await early).data["covers"] == 1
        assert {(await t).data["covers"] for t in late} == {2}  # one build for the three
        assert cache.builds == 2
        # Nothing changed since: kept.
        assert (await ask()).data["covers"] == 2 and cache.builds == 2
        # Another customer at the very same log state gets their own build.
        other = await ask(THEIRS)
        assert other.data["customer"] == THEIRS and cache.builds == 3
        assert (await ask()).data["customer"] == MINE


async def test_a_failed_build_is_not_kept() -> None:
    cache = ReportCache()
    calls = 0

    async def state() -> ReportState:
        return _state(MINE, 1)

    async def failing() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise RuntimeError("the log could not be read")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get(MINE, state, failing)
    assert calls == 2


async def test_kept_reports_are_bounded_in_bytes() -> None:
    cache = ReportCache(limit=50_000)
    for number in range(100):
        customer = f"kunde-{number}"

        async def state(c: str = customer) -> ReportState:
            return _state(c, 1)

        async def build(c: str = customer) -> dict[str, Any]:
            return {"customer": c, "padding": "x" * 2000}

        await cache.get(customer, state, build)
    assert cache.builds == 100
    assert 0 < len(cache) < 15


def test_the_state_moves_with_the_customers_log_and_notices_and_not_with_anothers(
    tmp_path: Path,
) -> None:
    """``report_state``: a new entry of the customer's, or an acknowledgement of their erasure
    notice (no entry is written for it), is a new state; another customer's entry is not."""
    signer = Signer.generate()
    log = Log(tmp_path / "log.db", signer)
    try:
        log.write([make_draft(i, customer=MINE if i % 2 else THEIRS) for i in range(6)])
        db = log.path
        start = report_state(db, MINE, None, None)
        assert start == report_state(db, MINE, None, None)
        log.write([make_draft(6, customer=THEIRS)], checkpoint=False)
        assert report_state(db, MINE, None, None) == start
        log.write([make_draft(7, customer=MINE)], checkpoint=False)
        moved = report_state(db, MINE, None, None)
        assert moved.log.latest_seq > start.log.latest_seq
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "INSERT INTO erasures (id, customer, device, at, requested_by, entry_seq,"
                " content, queued, keys, retained) VALUES (1, ?, NULL, 0, 'Anna', 8, 0, 0, 0, 0)",
                (MINE,),
            )
            conn.execute(
                "INSERT INTO erasure_notices (notice, erasure_id, recipient, outbox_id)"
                " VALUES ('ab', 1, 'wartung-gmbh', 99)"
            )
        noticed = report_state(db, MINE, None, None)
        with conn:
            conn.execute("UPDATE erasure_notices SET acked_at = 1700000000000000")
        conn.close()
        acknowledged = report_state(db, MINE, None, None)
        assert len({moved, noticed, acknowledged}) == 3
        assert acknowledged.log == noticed.log == moved.log
    finally:
        log.close()
