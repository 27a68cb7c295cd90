"""Time only moves forward: a clock stepped back revives no consent and dates no entry earlier."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.log.reader import LogReader
from gateway.messages.clock import ForwardClock
from tests.gateway.harness import running_gateway
from tests.gateway.test_report import DEVICES
from tests.gateway.test_report import POLICY as MUELLER

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
    assert [(outcome, reason) for _, outcome, reason in decisions] == [
        ("withheld", "expired"),
        ("withheld", "expired"),
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


def test_the_clock_holds_at_the_log_and_reports_the_step_once() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    committed: list[datetime | None] = [None]
    wall = [t0]
    clock = ForwardClock(lambda: committed[0], wall=lambda: wall[0])
    assert clock.now() == t0
    committed[0] = t0 + timedelta(seconds=5)  # the log is ahead (written at a later time)
    wall[0] = t0 + timedelta(seconds=1)
    assert clock.now() == t0 + timedelta(seconds=5)
    wall[0] = t0 + timedelta(seconds=2)
    assert clock.now() == t0 + timedelta(seconds=5)
    assert clock.status() == {"steps_back": 1, "behind_s": 3.0, "largest_step_s": 4.0}
    wall[0] = t0 + timedelta(seconds=6)  # caught up
    assert clock.now() == wall[0] and clock.status()["behind_s"] == 0.0
    # A row decided earlier is judged no earlier than the log, and that is not a step.
    assert clock.not_before(t0) == t0 + timedelta(seconds=5)
    assert clock.status()["steps_back"] == 1
