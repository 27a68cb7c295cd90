"""Send time with overlapping grants (gateway/messages/sendtime.py, policies/onset.py): a row is
released under one grant; another grant for the same recipient and device stream begins to
apply while it waits. What leaves is what the grants applying *now* release together, judged by
the engine's own combining code, and the log says which grant began to apply and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.messages.intake import Arrival
from gateway.messages.outbox import OutboxRow
from policies.decision import Reason
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_sendtime import RECIPIENTS, TOPIC, Bench, open_bench
from tests.policies.conftest import compile_text

POLICY = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
timezone: Europe/Berlin
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - pattern: "bakery/oven-1/telemetry"
        stream: telemetry
grants:
  - id: maintenance
    recipient: oven-maker
    purpose: {de: "Fernwartung der Öfen", en: "Remote maintenance of the ovens"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}"
    fields:
      temperature: {round: 0.5}
      door_open: keep
  - id: daytime
    recipient: oven-maker
    purpose: {de: "Auswertung tagsüber", en: "Daytime analysis"}
    legal_basis: consent
    consent: {given_by: "Jana Schmidt", given_at: 2026-01-01T00:00:00Z}
    devices: [oven-1]
    topic: "ovens/{customer}/{device}/day"
    hours: ["06:00-22:00"]
    fields:
      temperature: {round: 5}
"""
# Thursday 3 December 2026 in Berlin (UTC+1): 04:30, before the daytime grant's hours; 06:30,
# inside them; 13:00, inside them.
EARLY = datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
MORNING = datetime(2026, 12, 3, 5, 30, tzinfo=UTC)
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
READING: dict[str, object] = {"temperature": 182.7, "door_open": True}


async def released(bench: Bench, payload: dict[str, object]) -> dict[str, OutboxRow]:
    """Decide one message now; its queued rows by grant."""
    before = {r.id for r in await bench.waiting()}
    await bench.pipeline.process([Arrival(FakeLink().deliver(TOPIC, orjson.dumps(payload)))])
    return {r.grant: r for r in await bench.waiting() if r.id not in before}


async def test_a_more_protective_grant_whose_hours_begin_while_a_row_waits_decides_it_again(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, POLICY, EARLY) as bench:
        row = await bench.queued(READING)
        # Decided at 04:30: only "maintenance" applies, its rounding to 0.5 is what left.
        assert row.grant == "maintenance"
        assert orjson.loads(row.payload) == {"temperature": 182.5, "door_open": True}
        bench.now[0] = MORNING
        settled = await bench.check.settle([row])
        (sent,) = settled.leave
        # Where both apply, the coarser rounding of the two (policies/combine.py).
        assert orjson.loads(sent.payload) == {"temperature": 185.0, "door_open": True}
        assert sent.id == row.id and sent.entry_seq > row.entry_seq and sent.grant == row.grant
        waiting = [orjson.loads(r.payload) for r in await bench.waiting()]
        assert waiting == [{"temperature": 185.0, "door_open": True}]
        last = (await bench.texts())[-1]
        assert last.startswith(
            "Re-decided at send time: after the decision, grant 'daytime' for Ofenbau Müller "
            "began to apply (its allowed hours, 06:00-22:00, began), and where both grants apply "
            "each field leaves in the more protective of their treatments."
        ), last
        # The new decision's own explanation follows and names the field's new form.
        assert "temperature" in last and "daytime" in last[200:]
        # Settled once: the new row is checked again at no cost and with no new entry.
        entries = len(await bench.texts())
        assert (await bench.check.settle([sent])).leave == [sent]
        assert len(await bench.texts()) == entries


async def test_a_row_the_new_grant_does_not_change_leaves_as_decided_without_an_entry(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, POLICY, EARLY) as bench:
        row = await bench.queued({"door_open": False})  # nothing "daytime" names
        before = await bench.texts()
        bench.now[0] = MORNING
        settled = await bench.check.settle([row])
        assert settled.leave == [row] and settled.withheld == []
        assert await bench.texts() == before  # its entry is still true: nothing is written


async def test_a_row_decided_inside_both_grants_hours_is_not_decided_again(tmp_path: Path) -> None:
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        first = (await released(bench, READING))["maintenance"]
        before = await bench.texts()
        settled = await bench.check.settle([first])
        assert settled.leave == [first]
        assert await bench.texts() == before


async def test_consent_given_again_while_a_row_waits_decides_it_again(tmp_path: Path) -> None:
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        bench.engine.withdraw("baeckerei-schmidt", "daytime", NOON)
        row = await bench.queued(READING)
        assert orjson.loads(row.payload) == {"temperature": 182.5, "door_open": True}
        bench.now[0] = NOON.replace(minute=10)
        bench.engine.give("baeckerei-schmidt", "daytime", bench.now[0])
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == {"temperature": 185.0, "door_open": True}
        assert (await bench.texts())[-1].startswith(
            "Re-decided at send time: after the decision, grant 'daytime' for Ofenbau Müller "
            "began to apply (consent to it was given again)"
        )


async def test_a_restriction_lifted_while_a_row_waits_is_named_as_such(tmp_path: Path) -> None:
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        bench.engine.withdraw("baeckerei-schmidt", "daytime", NOON, Reason("restricted"))
        row = await bench.queued(READING)
        bench.now[0] = NOON.replace(minute=10)
        bench.engine.give("baeckerei-schmidt", "daytime", bench.now[0])
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload)["temperature"] == 185.0
        text = (await bench.texts())[-1]
        assert "(its restriction was lifted)" in text, text


SUMMARY = POLICY.replace(
    """    fields:
      temperature: {round: 5}
""",
    """    aggregate:
      window: 1m
      fields:
        temperature: [mean]
""",
)


async def test_a_summarising_grant_that_begins_to_apply_withholds_the_field_truthfully(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, SUMMARY, EARLY) as bench:
        row = await bench.queued(READING)
        assert orjson.loads(row.payload) == {"temperature": 182.5, "door_open": True}
        only = await bench.queued({"temperature": 181.0})
        assert only.grant == "maintenance"
        bench.now[0] = MORNING
        settled = await bench.check.settle([row, only])
        # The temperature now leaves only as "daytime"'s summary; these messages are in none.
        (sent,) = settled.leave
        assert orjson.loads(sent.payload) == {"door_open": True}
        assert settled.withheld == [only]
        *_, first, last = await bench.texts()
        assert "grant 'daytime' for Ofenbau Müller began to apply" in first, first
        assert first.endswith(
            "'daytime' passes these fields on only as a summary; this message was decided "
            "before that grant applied and is part of no summary."
        ), first
        assert "nothing of this release may leave" in last, last
        assert "is part of no summary" in last, last
        assert "being collected" not in last


async def test_a_more_protective_grant_a_reload_adds_applies_to_rows_already_queued(
    tmp_path: Path,
) -> None:
    alone = POLICY[: POLICY.index("  - id: daytime")]
    async with open_bench(tmp_path, alone, NOON) as bench:
        row = await bench.queued(READING)
        assert orjson.loads(row.payload) == {"temperature": 182.5, "door_open": True}
        newer = compile_text(POLICY, RECIPIENTS)
        bench.engine.replace(newer)
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == {"temperature": 185.0, "door_open": True}
        assert (await bench.texts())[-1].startswith(
            f"Re-decided at send time under version {newer.version[:12]} of the policy"
        )


async def test_a_row_whose_source_was_not_kept_is_withheld_and_says_why(tmp_path: Path) -> None:
    async with open_bench(tmp_path, POLICY, EARLY) as bench:
        row = await bench.queued({**READING, "notes": "x" * 5000})  # too large to keep beside it
        assert row.source is None
        bench.now[0] = MORNING
        settled = await bench.check.settle([row])
        assert settled.leave == [] and settled.withheld == [row]
        assert await bench.waiting() == []
        assert (await bench.texts())[-1] == (
            "Withheld at send time: after the decision, grant 'daytime' for Ofenbau Müller began "
            "to apply (its allowed hours, 06:00-22:00, began), and this release could not be "
            "decided again with both grants: the device's message was not kept with it. It went "
            "to no one."
        )


async def test_a_waiting_row_is_withheld_for_the_clock_in_the_name_of_the_grant_that_differs(
    tmp_path: Path,
) -> None:
    """The log's time stands at 13:00 while the system clock says 01:00: "maintenance" has no
    hours, "daytime" (overlapping it) applies at 13:00 and not at 01:00, so the row waits on
    which time is right. Withheld, and the entry names "daytime", whose hours differ; at 12:00
    by the clock both apply and the row leaves as decided."""
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        rows = await released(bench, READING)
        row = rows["maintenance"]
        bench.clock.behind = NOON - timedelta(hours=1)
        assert (await bench.check.settle([row])).leave == [row]
        bench.clock.behind = NOON - timedelta(hours=12)
        settled = await bench.check.settle([row])
        assert settled.leave == [] and settled.withheld == [row]
        last = (await bench.texts())[-1]
        assert "the allowed hours of grant “daytime”" in last, last
        # Withdrawn, "daytime" applies at neither moment: "maintenance" alone decides again.
        bench.engine.withdraw("baeckerei-schmidt", "daytime", NOON)
        row = (await released(bench, READING))["maintenance"]
        assert (await bench.check.settle([row])).leave == [row]


async def test_a_waiting_row_without_its_message_counts_every_grant_overlapping_it(
    tmp_path: Path,
) -> None:
    """A row whose message was not kept (too large to keep) cannot show which grants its
    message meets: while the clock is behind, every overlapping grant not held back counts, so
    "daytime"'s hours (13:00 by the log, 01:00 by the clock) withhold it."""
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        row = replace((await released(bench, READING))["maintenance"], source=None)
        bench.clock.behind = NOON - timedelta(hours=1)
        assert (await bench.check.settle([row])).leave != []  # both in daytime's hours
        row = replace((await released(bench, READING))["maintenance"], source=None)
        bench.clock.behind = NOON - timedelta(hours=12)
        settled = await bench.check.settle([row])
        assert settled.leave == [] and settled.withheld == [row]
        assert "the allowed hours of grant “daytime”" in (await bench.texts())[-1]


MAINTENANCE_SUMMARY = POLICY.replace(
    """    fields:
      temperature: {round: 0.5}
      door_open: keep
""",
    """    aggregate:
      window: 1m
      fields:
        temperature: [mean]
""",
)


async def test_a_waiting_summary_is_judged_by_its_own_grant_while_the_clock_is_behind(
    tmp_path: Path,
) -> None:
    """A summary is already the most protective form: while the clock says 01:00 and the log
    13:00, the hours of "daytime" (overlapping) do not hold back "maintenance"'s summary, which
    has no hours of its own."""
    assert "aggregate" in MAINTENANCE_SUMMARY
    async with open_bench(tmp_path, MAINTENANCE_SUMMARY, NOON) as bench:
        for value in (180.0, 182.0, 184.0):
            await released(bench, {"temperature": value})
        closed = NOON + timedelta(minutes=2)
        rows = await bench.pipeline.record(bench.engine.flush(closed), closed)
        (summary,) = [r for r in rows if r.grant == "maintenance"]
        assert orjson.loads(summary.payload)["temperature"] == {"mean": 182.0}
        bench.now[0] = closed
        bench.clock.behind = closed - timedelta(hours=12)
        assert (await bench.check.settle([summary])).leave == [summary]


async def test_a_consent_given_again_just_after_a_decision_decides_the_row_again(
    tmp_path: Path,
) -> None:
    """While the clock is behind, the log's time moves a microsecond per time the gateway hands
    out (tests/gateway/test_clock.py): a row decided without "daytime" (withdrawn) and the
    consent given again a microsecond later keep their order, so the row is decided again and
    the coarser rounding leaves."""
    async with open_bench(tmp_path, POLICY, NOON) as bench:
        bench.engine.withdraw("baeckerei-schmidt", "daytime", NOON - timedelta(hours=1))
        row = (await released(bench, READING))["maintenance"]
        assert orjson.loads(row.payload) == {"temperature": 182.5, "door_open": True}
        bench.engine.give("baeckerei-schmidt", "daytime", NOON + timedelta(microseconds=1))
        (sent,) = (await bench.check.settle([row])).leave
        assert orjson.loads(sent.payload) == {"temperature": 185.0, "door_open": True}
