"""Time only moves forward: a clock stepped back revives no consent and dates no entry earlier."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from gateway.log.reader import LogReader
from gateway.messages.clock import ForwardClock
from policies.message import Message
from tests.gateway.clocks import suspendable
from tests.gateway.harness import running_gateway
from tests.gateway.test_report import DEVICES
from tests.gateway.test_report import POLICY as MUELLER
from tests.policies.conftest import make_engine

UNTIL = datetime(2026, 6, 1, tzinfo=UTC)
EXPIRING = MUELLER.replace(
    "given_at: 2026-01-01T00:00:00Z}",
    "given_at: 2026-01-01T00:00:00Z, until: 2026-06-01T00:00:00Z}",
)


async def _decisions(db: Path) -> list[tuple[datetime, str | None, str | None]]:
    """(time, outcome, reason) of every decision entry, in the order written."""
    reader = await LogReader.open(db)
    try:
        found = []
        for row in reversed(await reader.page(limit=1000)):
            if row.kind == "decision":
                detail = await reader.get(row.seq)
                assert detail is not None
                found.append((row.at, row.outcome, detail.reason))
        return found
    finally:
        await reader.close()


async def test_a_clock_stepped_back_revives_no_expired_consent(tmp_path: Path) -> None:
    assert "until: 2026-06-01" in EXPIRING
    wall = [UTC_AFTER := UNTIL + timedelta(hours=1)]
    async with running_gateway(tmp_path, {"mueller.yaml": EXPIRING}, DEVICES[:1]) as h:
        h.gateway.clock.wall = lambda: wall[0]
        meter = await h.device("mueller-soehne", "meter-1")
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1, "total": 1}), 1)
        await h.wait_committed(1)
        # Someone sets the clock back a month, into the consent's validity.
        wall[0] = UNTIL - timedelta(days=31)
        await meter.publish("meters/meter-1", orjson.dumps({"power": 2, "total": 2}), 1)
        await h.wait_committed(2)
        status = h.gateway.status().to_json()
        await meter.close()
        db = h.gateway.config.database_path
    assert not h.cloud.received  # the consent stayed expired
    decisions = await _decisions(db)
    # Expired at the log's time, in force at the clock's: which is true depends on which time is
    # right, so the second entry says the clock is behind rather than "expired" (nothing left).
    assert [(outcome, reason) for _, outcome, reason in decisions] == [
        ("withheld", "expired"),
        ("withheld", "clock_behind"),
    ]
    first, second = (at for at, _, _ in decisions)
    assert second >= first  # never dated before an entry already written
    assert first == UTC_AFTER
    # Shown: how often and how far the clock went back.
    assert status["clock"]["steps_back"] == 1
    assert status["clock"]["behind_s"] >= 31 * 86400
    # And every time in the log, checkpoints included, is in order of writing.
    with sqlite3.connect(db) as conn:
        times = [at for (at,) in conn.execute("SELECT at FROM entries ORDER BY seq")]
        marks = [at for (at,) in conn.execute("SELECT at FROM checkpoints ORDER BY seq")]
    assert times == sorted(times) and marks == sorted(marks)


async def test_a_clock_stepped_forward_and_back_releases_only_what_both_times_allow(
    tmp_path: Path,
) -> None:
    """Someone sets the date a year ahead, a message is released and logged then, and the date
    is set right again: the log's time stays a year ahead. The consent was given on 1 January;
    by the clock it is now mid-December before it. Before, the message was judged at the log's
    time alone and released; now the two times disagree and it stays here, saying why."""
    given = datetime(2026, 1, 1, tzinfo=UTC)
    wall = [given + timedelta(days=365)]
    async with running_gateway(tmp_path, {"mueller.yaml": MUELLER}, DEVICES[:1]) as h:
        h.gateway.clock.wall = lambda: wall[0]
        meter = await h.device("mueller-soehne", "meter-1")
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1, "total": 1}), 1)
        await h.wait_committed(1)
        await h.cloud.wait_for(1)  # sent: a row still waiting would be judged again at send
        wall[0] = given - timedelta(days=17)  # set right: before the consent was given
        await meter.publish("meters/meter-1", orjson.dumps({"power": 2, "total": 2}), 1)
        await h.wait_committed(2)
        wall[0] = given + timedelta(days=1)  # behind still, but every time it may be allows it
        await meter.publish("meters/meter-1", orjson.dumps({"power": 3, "total": 3}), 1)
        await h.wait_committed(3)
        await h.cloud.wait_for(2)
        status = h.gateway.status().to_json()
        await meter.close()
        db = h.gateway.config.database_path
    assert [orjson.loads(m.payload)["total"] for m in h.cloud.received] == [1, 3]
    decisions = await _decisions(db)
    assert [(outcome, reason) for _, outcome, reason in decisions] == [
        ("altered", None),
        ("withheld", "clock_behind"),
        ("altered", None),
    ]
    assert status["clock"]["steps_back"] == 1 and status["clock"]["behind_s"] > 300 * 86400


async def test_a_rate_limit_counts_the_hours_the_box_was_suspended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message is stamped, when the broker hands it over, on the clock that counts while the
    machine is suspended. On the monotonic clock an hour's suspend did not count: the first
    message after it was withheld as "came too soon" an hour after the last release."""
    slept = suspendable(monkeypatch)
    limited = MUELLER.replace("    fields:\n", "    rate_limit: 10m\n    fields:\n", 1)
    assert "rate_limit: 10m" in limited
    async with running_gateway(tmp_path, {"mueller.yaml": limited}, DEVICES[:1]) as h:
        meter = await h.device("mueller-soehne", "meter-1")
        for total in (1, 2):
            await meter.publish("meters/meter-1", orjson.dumps({"power": 1, "total": total}), 1)
            await h.wait_committed(total)
        slept[0] = 3600.0  # suspended for an hour: the monotonic clock stood still meanwhile
        await meter.publish("meters/meter-1", orjson.dumps({"power": 3, "total": 3}), 1)
        await h.wait_committed(3)
        await h.cloud.wait_for(2)
        await meter.close()
        db = h.gateway.config.database_path
    assert [orjson.loads(m.payload)["total"] for m in h.cloud.received] == [1, 3]
    decisions = await _decisions(db)
    assert [(outcome, reason) for _, outcome, reason in decisions] == [
        ("altered", None),
        ("withheld", "rate_limited"),
        ("altered", None),
    ]


def test_the_clock_holds_at_the_log_and_reports_the_step_once() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    committed: list[datetime | None] = [None]
    wall = [t0]
    clock = ForwardClock(lambda: committed[0], wall=lambda: wall[0], monotonic=lambda: 0.0)
    assert clock.now() == t0
    committed[0] = t0 + timedelta(seconds=5)  # the log is ahead (written at a later time)
    wall[0] = t0 + timedelta(seconds=1)
    # At the log's time, a microsecond on each time: never one time twice, so what happens
    # meanwhile keeps its order (a consent given after a decision is dated after it).
    assert clock.now() == t0 + timedelta(seconds=5) + tick
    wall[0] = t0 + timedelta(seconds=2)
    assert clock.now() == t0 + timedelta(seconds=5) + 2 * tick
    assert clock.now() == t0 + timedelta(seconds=5) + 3 * tick
    status = clock.status()
    assert status["steps_back"] == 1 and status["largest_step_s"] == 4.0
    assert status["behind_s"] == 3.000002
    # Judged at the clock's reading too, and at the last good one (t0) carried forward by the
    # time since (none here).
    assert clock.also_at() == (wall[0], t0)
    assert clock.status()["also_at"] == [wall[0].isoformat(), t0.isoformat()]  # for status
    wall[0] = t0 + timedelta(seconds=6)  # caught up
    assert clock.now() == wall[0] and clock.status()["behind_s"] == 0.0
    assert clock.also_at() == () and clock.status()["also_at"] == []  # one time again
    # A row decided earlier is judged no earlier than the log, and that is not a step.
    assert clock.not_before(t0) == t0 + timedelta(seconds=5)
    assert clock.status()["steps_back"] == 1


def test_while_behind_grants_are_also_judged_at_the_clock_carried_forward() -> None:
    """NTP steps the clock back three hours by mistake at 17:30. Two and a half hours later the
    real time is 20:00; the log's time stands at 17:30 and the clock says 17:00. The last good
    reading carried forward by the time since says 20:00: a grant with hours 08:00-18:00 is
    judged there too (it was released at 20:00 before, judged at 17:30 and 17:00 alone)."""
    t = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 17:30 in Berlin
    committed: list[datetime | None] = [None]
    wall, mono = [t], [1000.0]
    clock = ForwardClock(lambda: committed[0], wall=lambda: wall[0], monotonic=lambda: mono[0])
    assert clock.now() == t and clock.also_at() == ()
    committed[0] = t
    wall[0], mono[0] = t - timedelta(hours=3), 1000.0 + 1.0  # the step
    now = clock.now()
    assert t < now < t + timedelta(milliseconds=1)
    wall[0], mono[0] = t - timedelta(hours=0.5), 1000.0 + 2.5 * 3600
    also = clock.also_at()
    assert also == (t - timedelta(hours=0.5), t + timedelta(hours=2.5))
    hours = make_engine({"fields": {"t": "keep"}, "hours": ["08:00-18:00"]})
    message = Message("acme/dev/anna", b'{"t":1}', now)
    assert hours.evaluate(message, now)[0].payload is not None  # the log's time alone: 17:30
    assert hours.evaluate(message, now, also=also[:1])[0].payload is not None  # and 17:00
    (held,) = hours.evaluate(message, now, also=also)  # and 20:00
    assert held.reason is not None and held.reason.code == "clock_behind"
    wall[0], mono[0] = t + timedelta(seconds=1), 1000.0 + 3 * 3600  # caught up (set right)
    assert clock.now() == wall[0] and clock.also_at() == ()


def test_a_gateway_started_while_the_clock_is_behind_knows_no_time_after_the_log_s() -> None:
    """No good reading in this process: the real time is some time after the log's, and the
    moments say so (None), so what may change after it is judged uncertain (policies.moments)."""
    t = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)
    clock = ForwardClock(lambda: t, wall=lambda: t - timedelta(hours=3))
    assert clock.now() > t
    assert clock.also_at() == (t - timedelta(hours=3), None)
