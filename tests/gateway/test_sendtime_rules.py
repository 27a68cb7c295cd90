"""Allowed hours at send time (gateway/messages/sendtime_rules.py): a release the gateway holds to
the end of its unit (``release: end_of_unit``) leaves with its hour, even when that end is the
hours' end, when its recipient can be reached then; and what the log says about hours that ended
is true of the row it is said of. A real database, log writer, pipeline and send-time check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.log.entry import at_from_us, us_from_at
from gateway.messages.outbox import OutboxRow
from gateway.messages.pseudonyms import Keyring
from gateway.messages.sendtime_rules import behind, hours_at
from policies.engine import Engine
from policies.examples import example_path
from policies.model import HELD_ON_TIME_S
from tests.gateway.test_sendtime import POLICY, RECIPIENTS, open_bench
from tests.gateway.test_sendtime_overlaps import POLICY as OVERLAPS
from tests.gateway.test_sendtime_overlaps import READING, released
from tests.policies.conftest import compile_text

HOURLY = POLICY.replace(
    "      door_open: keep\n", "      door_open: keep\n      ts: {truncate: hour}\n"
).replace("    hours:", "    release: end_of_unit\n    hours:")
PAYLOAD = {"temperature": 180.2, "door_open": True, "ts": 1796329800}
# Thursday 3 December 2026 in Berlin (UTC+1): 21:30, inside the hours 06:00-22:00 and in their
# last hour, which ends at 22:00 (21:00 UTC), the hours' end; 22:00:01, just after it.
DECIDED = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
END = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
JUST_AFTER = END + timedelta(seconds=1)
BEFORE_US = us_from_at(datetime(2026, 12, 3, 20, 0, tzinfo=UTC))  # a session open since 21:00
AWAY_US = us_from_at(END + timedelta(minutes=5))  # a session opened at 22:05, after the hold
GRANT = compile_text(HOURLY, RECIPIENTS).grant("maintenance")
HOURS_ENDED = (
    "Withheld at send time, because the allowed hours of grant 'maintenance' (06:00-22:00) had "
    "ended before it could be sent to Ofenbau Müller. The message was decided inside those "
    "hours; it went to no one."
)


async def test_a_release_held_to_the_end_of_the_last_allowed_hour_leaves_then(
    tmp_path: Path,
) -> None:
    """Before, every release of the last allowed hour was withheld at 22:00 with "the allowed
    hours had ended before Ofenbau Müller could be reached": false (the gateway held it), and
    lost."""
    async with open_bench(tmp_path, HOURLY, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        assert row.release_at == us_from_at(END)
        before = await bench.texts()
        bench.now[0] = JUST_AFTER
        settled = await bench.check.settle([row], BEFORE_US)
        assert settled.leave == [row] and settled.withheld == []
        assert await bench.texts() == before  # left as decided: its entry is true
        assert await bench.waiting() == [row]


async def test_a_held_release_whose_recipient_was_away_when_the_hold_ended_is_withheld(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, HOURLY, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        bench.now[0] = END + timedelta(minutes=5)
        settled = await bench.check.settle([row], AWAY_US)
        assert settled.leave == [] and settled.withheld == [row]
        assert (await bench.texts())[-1] == HOURS_ENDED
        assert await bench.waiting() == []


async def test_a_held_release_checked_long_after_its_hold_ended_is_judged_then(
    tmp_path: Path,
) -> None:
    """Reachable all along, but a backlog (or a stall on this side) took longer than the hour's
    releases leaving together: no longer the hold's doing, so the hours are judged at send time
    and nothing leaves outside them (05:00 the next morning here, or 22:01:01)."""
    async with open_bench(tmp_path, HOURLY, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        bench.now[0] = END + timedelta(seconds=HELD_ON_TIME_S + 1)
        assert (await bench.check.settle([row], BEFORE_US)).withheld == [row]
        assert (await bench.texts())[-1] == HOURS_ENDED
        assert hours_at(row, GRANT, END + timedelta(seconds=HELD_ON_TIME_S), BEFORE_US) == DECIDED
        assert hours_at(row, GRANT, END + timedelta(hours=8), BEFORE_US) == END + timedelta(hours=8)


async def test_a_held_release_whose_new_version_no_longer_holds_is_judged_at_send_time(
    tmp_path: Path,
) -> None:
    """The exception rests on the policy's own hold: a version without it judges the row as
    any other, and at 22:00:01 that is outside the hours."""
    async with open_bench(tmp_path, HOURLY, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        unheld = HOURLY.replace("    release: end_of_unit\n", "")
        bench.engine.replace(compile_text(unheld, RECIPIENTS))
        bench.now[0] = JUST_AFTER
        assert (await bench.check.settle([row], BEFORE_US)).withheld == [row]
        assert (await bench.texts())[-1] == HOURS_ENDED


async def test_a_held_release_decided_again_on_time_is_judged_by_the_hours_of_its_decision(
    tmp_path: Path,
) -> None:
    """Stale for another cause (a new version): decided again from its source, its hours judged
    at its decision, everything else now."""
    async with open_bench(tmp_path, HOURLY, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        bench.engine.replace(
            compile_text(HOURLY.replace("door_open: keep", "door_open: keep # v2"), RECIPIENTS)
        )
        bench.now[0] = JUST_AFTER
        (sent,) = (await bench.check.settle([row], BEFORE_US)).leave
        assert sent.version != row.version and sent.release_at == row.release_at
        assert orjson.loads(sent.payload) == orjson.loads(row.payload)
        assert (await bench.texts())[-1].startswith("Re-decided at send time under version ")
        # A consent withdrawn meanwhile still counts at send time, held or not.
        bench.engine.withdraw("baeckerei-schmidt", "maintenance", JUST_AFTER)
        assert (await bench.check.settle([sent], BEFORE_US)).withheld == [sent]
        assert (await bench.texts())[-1].startswith(
            "Withheld at send time, because the grant was withdrawn."
        )


async def test_a_held_release_of_hours_that_end_within_its_hour_leaves_at_the_hours_end(
    tmp_path: Path,
) -> None:
    """Hours ending at 21:45: the release decided at 21:30 is held to 22:00 by the policy's own
    rule, and leaves then, as ``policy describe`` says."""
    early_end = HOURLY.replace("06:00-22:00", "06:00-21:45")
    async with open_bench(tmp_path, early_end, DECIDED) as bench:
        row = await bench.queued(PAYLOAD)
        bench.now[0] = JUST_AFTER
        assert (await bench.check.settle([row], BEFORE_US)).leave == [row]


async def test_a_row_decided_outside_hours_a_new_version_narrowed_is_not_said_decided_inside(
    tmp_path: Path,
) -> None:
    """Decided at 21:00 under 06:00-22:00, the hours narrowed to 08:00-20:00 while it waits:
    "decided inside those hours" would be false of the hours named."""
    async with open_bench(tmp_path, POLICY, DECIDED - timedelta(minutes=30)) as bench:
        row = await bench.queued({"temperature": 180.2, "door_open": True})
        bench.engine.replace(compile_text(POLICY.replace("06:00-22:00", "08:00-20:00"), RECIPIENTS))
        bench.now[0] = DECIDED - timedelta(minutes=25)
        assert (await bench.check.settle([row])).withheld == [row]
        last = (await bench.texts())[-1]
        assert last.startswith(
            "Withheld at send time, because the message came outside the allowed hours "
            "(08:00-20:00)."
        ), last
        assert "decided inside those hours" not in last


async def test_the_overlapping_grants_of_a_held_release_on_time_are_judged_at_its_decision(
    tmp_path: Path,
) -> None:
    """ "daytime" (06:00-22:00) applied at the decision of a held "maintenance" row: on time at
    22:00 it has not stopped applying for that row, and the row is not decided again."""
    held = OVERLAPS.replace(
        "      door_open: keep\n", "      door_open: keep\n      ts: {truncate: hour}\n", 1
    ).replace(
        "    fields:\n      temperature: {round: 0.5}",
        "    release: end_of_unit\n    fields:\n      temperature: {round: 0.5}",
    )
    async with open_bench(tmp_path, held, DECIDED) as bench:
        row = (await released(bench, {**READING, "ts": 1796329800}))["maintenance"]
        assert row.release_at == us_from_at(END)
        policy = bench.engine.policy("baeckerei-schmidt")
        grant = policy.grant("maintenance") if policy is not None else None
        engine, on_time = bench.engine, hours_at(row, grant, JUST_AFTER, BEFORE_US)
        assert on_time == at_from_us(row.created)
        assert bench.check.stop(engine, row, JUST_AFTER, hours=on_time) == ()
        assert bench.check.stop(engine, row, JUST_AFTER) != ()  # late: it stopped
        before = await bench.texts()
        bench.now[0] = JUST_AFTER
        assert (await bench.check.settle([row], BEFORE_US)).leave == [row]
        assert await bench.texts() == before


def test_the_moment_hours_are_judged_at() -> None:
    """At the decision only for a held row leaving on time: its grant still holds, its
    recipient reachable since before the hold ended, at most HELD_ON_TIME_S after that end."""
    now = JUST_AFTER
    row = OutboxRow(1, 1, "r", "c", "d", "g", "t", b"{}", us_from_at(DECIDED))
    held = replace(row, release_at=us_from_at(END))
    assert hours_at(held, GRANT, now, BEFORE_US) == DECIDED
    assert hours_at(held, GRANT, now, us_from_at(END)) == DECIDED  # reachable as it ended
    assert hours_at(held, GRANT, now, AWAY_US) == now  # reachable only after: it was away
    assert hours_at(held, GRANT, now, None) == now  # not known: judged now
    assert hours_at(row, GRANT, now, BEFORE_US) == now  # not held
    assert hours_at(held, None, now, BEFORE_US) == now  # no such grant now
    unheld = compile_text(HOURLY.replace("    release: end_of_unit\n", ""), RECIPIENTS)
    assert hours_at(held, unheld.grant("maintenance"), now, BEFORE_US) == now
    early = END - timedelta(minutes=1)
    assert hours_at(held, GRANT, early, BEFORE_US) == early  # not due yet


def test_while_behind_a_sparkplug_row_s_grants_count_whatever_their_conditions() -> None:
    """A Sparkplug row's stored message is protobuf read against a BIRTH the running engine
    holds: its grants' conditions cannot be judged at send time, so each grant not held back
    counts while the clock is behind (here its hours: 13:00 by the log, 01:00 by the clock)."""
    text = (Path(example_path("bakery")).parent / "sparkplug" / "factory.yaml").read_text(
        encoding="utf-8"
    )
    text = text.replace(
        "    valid: {from: 2026-01-01T00:00:00Z, until: 2029-01-01T00:00:00Z}",
        "    valid: {from: 2026-01-01T00:00:00Z, until: 2029-01-01T00:00:00Z}\n"
        '    hours: ["06:00-22:00"]\n'
        "    when: [{field: Temperature, above: 100}]",
        1,
    )
    assert "when:" in text
    engine = Engine([compile_text(text, {"oven-maker": "Ofenbau"})], Keyring())
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    row = OutboxRow(
        1,
        1,
        "oven-maker",
        "grossbaeckerei-nord",
        "line-1-oven-1",
        "oven-maintenance",
        "t",
        b"{}",
        us_from_at(now),
        version="v",
        source_topic="spBv1.0/Werk Nord/DDATA/Linie 1/Ofen 1",
        source=b"\x08\x96\x01\x12\x04",
    )
    assert behind(engine, row, now, (), now) is None  # not behind
    assert behind(engine, row, now, (now - timedelta(hours=1),), now) is None  # both in hours
    reason = behind(engine, row, now, (now - timedelta(hours=12),), now)
    assert reason is not None and reason.code == "clock_behind"
    assert reason.params == {"what": "hours", "grant": "oven-maintenance"}
    engine.withdraw("grossbaeckerei-nord", "oven-maintenance", now)
    assert behind(engine, row, now, (now - timedelta(hours=12),), now) is None  # held: its own


def test_while_behind_a_row_without_its_message_counts_the_grants_of_its_device() -> None:
    """A row whose message was not kept: its stream and conditions are unknown, its device is
    not. "daytime" (hours 06:00-22:00) covers oven-1 only, so it weighs on oven-1's rows alone."""
    engine = Engine([compile_text(OVERLAPS, RECIPIENTS)], Keyring())
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # 13:00 in Berlin; the clock says 01:00
    night = (now - timedelta(hours=12),)
    row = OutboxRow(
        1,
        1,
        "oven-maker",
        "baeckerei-schmidt",
        "oven-1",
        "maintenance",
        "t",
        b"{}",
        us_from_at(now),
        version="v",
    )
    reason = behind(engine, row, now, night, now)
    assert reason is not None and reason.params == {"what": "hours", "grant": "daytime"}
    assert behind(engine, replace(row, device="oven-2"), now, night, now) is None
