"""Cost of the send-time check for rows whose grant overlaps another for the same recipient
(gateway/messages/sendtime.py, policies/onset.py): unchanged rows, rows a grant that began to
apply leaves unchanged (decided again, no entry), and rows it changes (decided again, entry);
the other direction: rows decided and sent with 'daytime' applying at neither time (not decided
again) and rows decided inside its hours and sent after them (decided again, entry).

    .venv/bin/python -m tests.gateway.bench_sendtime_overlaps
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from gateway.messages.intake import Arrival
from gateway.messages.outbox import OutboxRow
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_sendtime import TOPIC, Bench, open_bench
from tests.gateway.test_sendtime_overlaps import EARLY, MORNING, NOON, POLICY
from tests.gateway.test_sendtime_stops import AFTER, LATE, NIGHT


async def queue(b: Bench, payloads: Sequence[dict[str, object]]) -> list[OutboxRow]:
    link = FakeLink()
    for start in range(0, len(payloads), 100):
        chunk = payloads[start : start + 100]
        await b.pipeline.process([Arrival(link.deliver(TOPIC, orjson.dumps(p))) for p in chunk])
    return [r for r in await b.waiting_all() if r.grant == "maintenance"]


async def timed(b: Bench, rows: list[OutboxRow], label: str) -> None:
    entries = b.check.entries
    t = time.perf_counter()
    settled = await b.check.settle(rows)
    per = (time.perf_counter() - t) / len(rows) * 1e6
    written = b.check.entries - entries
    print(f"  {label}: {per:.1f} µs/row ({len(rows)} rows, {written} entries, {len(settled.leave)} leave)")  # fmt: skip


def checks_alone(b: Bench, rows: list[OutboxRow], now: datetime, label: str) -> None:
    """CPU per row of the O(overlaps) looks alone (best of 5), before any deciding again."""
    engine = b.engine
    figures = []
    for name in ("onset", "stop"):
        best = float("inf")
        for _ in range(5):
            t = time.process_time()
            for _ in range(20):
                applying: dict[tuple[str, str], bool] = {}  # one per batch, as settle() keeps
                for row in rows:
                    if name == "onset":
                        b.check.onset(engine, row, now)
                    else:
                        b.check.stop(engine, row, now, applying=applying)
            best = min(best, (time.process_time() - t) / (20 * len(rows)) * 1e6)
        figures.append(f"{name} {best:.2f}")
    print(f"  {label}: {', '.join(figures)} µs/row CPU")


async def main() -> None:
    print("rows of grant 'maintenance', which 'daytime' (06:00-22:00) overlaps")
    with tempfile.TemporaryDirectory() as d:
        async with open_bench(Path(d), POLICY, NOON) as b:
            rows = await queue(b, [{"temperature": i, "door_open": True} for i in range(400)])
            checks_alone(b, rows, NOON, "looks alone, decided and sent inside both grants' hours")
            await timed(b, rows, "decided and sent inside both grants' hours (no onset)")
    with tempfile.TemporaryDirectory() as d:
        async with open_bench(Path(d), POLICY, EARLY) as b:
            rows = await queue(b, [{"door_open": i % 2 == 0} for i in range(400)])
            b.now[0] = MORNING
            await timed(b, rows, "'daytime' began to apply, nothing it names (decided again)")
    with tempfile.TemporaryDirectory() as d:
        async with open_bench(Path(d), POLICY, EARLY) as b:
            rows = await queue(b, [{"temperature": 180.7 + i, "door_open": True} for i in range(400)])  # fmt: skip
            b.now[0] = MORNING
            await timed(b, rows, "'daytime' began to apply and rounds coarser (entry each)")
    with tempfile.TemporaryDirectory() as d:
        async with open_bench(Path(d), POLICY, EARLY) as b:
            rows = await queue(b, [{"temperature": i, "door_open": True} for i in range(400)])
            b.now[0] = NIGHT
            checks_alone(b, rows, NIGHT, "looks alone, decided and sent outside 'daytime''s hours")
            await timed(b, rows, "decided and sent outside 'daytime''s hours (no stop)")
    with tempfile.TemporaryDirectory() as d:
        async with open_bench(Path(d), POLICY, LATE) as b:
            rows = await queue(b, [{"temperature": 180.7 + i, "door_open": True} for i in range(400)])  # fmt: skip
            b.now[0] = AFTER
            await timed(b, rows, "'daytime' stopped applying, rounds finer now (entry each)")


if __name__ == "__main__":
    asyncio.run(main())
