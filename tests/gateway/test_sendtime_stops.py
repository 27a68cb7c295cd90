"""Send time with a grant that stopped applying (gateway/messages/sendtime.py,
policies/onset.py ``stopped_applying``): a row decided while a more protective overlapping grant
applied must not leave in that grant's form once it no longer applies. What leaves is what the
grants applying *now* release, and the log says which grant stopped applying and why."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.log.reader import Reader
from policies.decision import Reason
from tests.gateway.test_sendtime import open_bench
from tests.gateway.test_sendtime_overlaps import EARLY, NOON, POLICY, READING, released

# Thursday 3 December 2026 in Berlin (UTC+1): 21:59, inside "daytime"'s hours; 22:01, after.
LATE = datetime(2026, 12, 3, 20, 59, tzinfo=UTC)
AFTER = datetime(2026, 12, 3, 21, 1, tzinfo=UTC)
NIGHT = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)
LEAD = "Re-decided at send time: after the decision, grant 'daytime' for Ofenbau Müller stopped "
FINE = {"temperature": 182.5, "door_open": True}  # "maintenance" alone: rounded to 0.5
COARSE = {"temperature": 185.0, "door_open": True}  # with "daytime": rounded to 5


async def test_a_row_decided_inside_a_coarser_grants_hours_leaves_finer_after_they_end(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, POLICY, LATE) as bench:
        row = (await released(bench, READING))["maintenance"]
        assert orjson.loads(row.payload) == COARSE
        bench.now[0] = AFTER
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == FINE
        assert sent.id == row.id and sent.entry_seq > row.entry_seq and sent.grant == row.grant
        assert [orjson.loads(r.payload) for r in await bench.waiting() if r.id == row.id] == [FINE]
        texts = await bench.texts()
        assert texts[-1].startswith(
            LEAD + "applying (its allowed hours, 06:00-22:00, ended), and each field leaves as "
            "the grants that still apply give it."
        ), texts[-1]
        # Settled once: checked again, it leaves with no new entry.
        assert (await bench.check.settle([sent])).leave == [sent]
        assert len(await bench.texts()) == len(texts)


@pytest.mark.parametrize(
    ("hold", "cause"),
    [
        (None, "(consent to it was withdrawn)"),
        (Reason("objected"), "(an objection to it was raised)"),
        (Reason("restricted"), "(its processing was restricted)"),
    ],
)
async def test_a_hold_set_on_the_coarser_grant_while_a_row_waits_is_named(
    tmp_path: Path, hold: Reason | None, cause: str
) -> None:
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        row = (await released(bench, READING))["maintenance"]
        assert orjson.loads(row.payload) == COARSE
        bench.engine.withdraw("baeckerei-schmidt", "daytime", NOON.replace(minute=5), hold)
        bench.now[0] = NOON.replace(minute=10)
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == FINE
        text = (await bench.texts())[-1]
        assert text.startswith(LEAD + "applying " + cause), text


async def test_the_end_of_the_coarser_grants_consent_record_is_named(tmp_path: Path) -> None:
    ending = POLICY.replace(
        'consent: {given_by: "Jana Schmidt", given_at: 2026-01-01T00:00:00Z}',
        'consent: {given_by: "Jana Schmidt", given_at: 2026-01-01T00:00:00Z, '
        "until: 2026-12-03T12:05:00Z}",
    )
    assert ending != POLICY
    async with open_bench(tmp_path, ending, NOON) as bench:
        row = (await released(bench, READING))["maintenance"]
        assert orjson.loads(row.payload) == COARSE
        bench.now[0] = NOON.replace(minute=10)
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == FINE
        text = (await bench.texts())[-1]
        assert text.startswith(LEAD + "applying (the consent it rests on expired)"), text


async def test_the_end_of_the_coarser_grants_validity_is_named(tmp_path: Path) -> None:
    ending = POLICY.replace(
        '    hours: ["06:00-22:00"]\n',
        '    hours: ["06:00-22:00"]\n    valid: {until: 2026-12-03T12:05:00Z}\n',
    )
    assert ending != POLICY
    async with open_bench(tmp_path, ending, NOON) as bench:
        row = (await released(bench, READING))["maintenance"]
        bench.now[0] = NOON.replace(minute=10)
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == FINE
        text = (await bench.texts())[-1]
        assert text.startswith(LEAD + "applying (its validity ended)"), text


async def test_nothing_is_decided_again_when_the_other_grant_applied_at_neither_time(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, POLICY, EARLY) as bench:
        # Decided at 04:30 and sent at 23:30: "daytime"'s hours neither then nor now.
        row = await bench.queued(READING)
        assert orjson.loads(row.payload) == FINE
        before = await bench.texts()
        bench.now[0] = NIGHT
        # Not even decided again (the cost): no grant stopped applying.
        assert bench.check.stop(bench.engine, row, NIGHT) == ()
        assert (await bench.check.settle([row])).leave == [row]
        assert await bench.texts() == before


async def test_a_grant_held_back_at_the_decision_and_now_is_not_named(tmp_path: Path) -> None:
    # Withdrawn, given again and withdrawn again while the row waited: "daytime" did not apply
    # at the decision (the first hold covered it), so nothing of it stopped applying.
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        engine = bench.engine
        engine.withdraw("baeckerei-schmidt", "daytime", NOON.replace(minute=1))
        bench.now[0] = NOON.replace(minute=2)
        row = await bench.queued(READING)
        assert orjson.loads(row.payload) == FINE
        engine.give("baeckerei-schmidt", "daytime", NOON.replace(minute=3))
        engine.withdraw("baeckerei-schmidt", "daytime", NOON.replace(minute=4))
        policy = engine.policy("baeckerei-schmidt")
        assert policy is not None
        before = await bench.texts()
        bench.now[0] = NOON.replace(minute=5)
        assert bench.check.stop(engine, row, bench.now[0]) == ()
        assert (await bench.check.settle([row])).leave == [row]
        assert await bench.texts() == before


async def test_a_row_without_its_source_leaves_as_decided(tmp_path: Path) -> None:
    # It cannot be decided again; its own grant still holds: more protective than needed.
    async with open_bench(tmp_path, POLICY, LATE) as bench:
        row = (await released(bench, {**READING, "notes": "x" * 5000}))["maintenance"]
        assert row.source is None
        before = await bench.texts()
        bench.now[0] = AFTER
        assert (await bench.check.settle([row])).leave == [row]
        assert await bench.texts() == before


LATE_GRANT = """  - id: late
    recipient: oven-maker
    purpose: {de: "Auswertung am späten Abend", en: "Late evening analysis"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}/late"
    hours: ["22:00-23:59"]
    fields:
      temperature: {round: 10}
"""


async def test_every_grant_that_began_or_stopped_is_named_not_only_the_first(
    tmp_path: Path,
) -> None:
    """At 22:00 "daytime" stops and "late" begins while a row waits: the row leaves as the
    grants applying now give it, and its entry names both changes, in both languages. Before,
    it named only the first grant found, and the sentence hid the other."""
    async with open_bench(tmp_path, POLICY + LATE_GRANT, LATE) as bench:
        row = (await released(bench, READING))["maintenance"]
        assert orjson.loads(row.payload) == COARSE  # with "daytime": rounded to 5
        bench.now[0] = AFTER
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == {"temperature": 180.0, "door_open": True}
        english = (await bench.texts())[-1]
        assert english.startswith(
            "Re-decided at send time: after the decision, the grants that apply for Ofenbau "
            "Müller changed: 'late' began to apply (its allowed hours, 22:00-23:59, began) and "
            "'daytime' stopped applying (its allowed hours, 06:00-22:00, ended). Each field "
            "leaves in the most protective treatment any grant that applies now gives it."
        ), english

        def german(conn: sqlite3.Connection) -> str:
            reader = Reader.over(conn, bench.path)
            last = reader.lines(None, limit=10_000)[-1]
            return reader.body(last.body_id).texts["de"]

        text = await bench.store.read(german)
        assert text.startswith(
            "Beim Versand neu entschieden: Nach der Entscheidung änderte sich, welche Freigaben "
            "für Ofenbau Müller gelten: „late“ gilt seitdem (ihre erlaubten Zeiten, 22:00-23:59, "
            "begannen) und „daytime“ gilt nicht mehr (ihre erlaubten Zeiten, 06:00-22:00, "
            "endeten)."
        ), text
