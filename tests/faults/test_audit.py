"""The auditor (tests/faults/audit.py) accounts for rows the send-time check decided again or
withheld: the later entry takes the earlier release's place, and a release that went nowhere is
named with its message, its recipient and every entry of it for that recipient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.messages.outbox import OutboxRow
from tests.faults.audit import AT_SEND, AuditReport, Captured, audit
from tests.gateway.test_sendtime import NOON, POLICY, RECIPIENTS, TOPIC, Bench, open_bench
from tests.policies.conftest import compile_text

READING = {"temperature": 180.2, "door_open": True}
AFTER_HOURS = datetime(2026, 12, 3, 21, 3, tzinfo=UTC)  # 22:03 in Berlin: the grant's hours over


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path, POLICY, NOON) as opened:
        yield opened


def _audit(bench: Bench, tmp_path: Path, received: list[OutboxRow]) -> AuditReport:
    key = tmp_path / "einblick.pub"
    key.write_text(bench.signer.public.pem(), encoding="utf-8")
    upstream = [Captured(r.topic, r.payload, r.recipient) for r in received]
    return audit(bench.path, key, upstream, [Captured(TOPIC, orjson.dumps(READING))])


async def test_a_row_decided_again_at_send_time_is_accounted_for_by_its_new_entry(
    bench: Bench, tmp_path: Path
) -> None:
    row = await bench.queued(READING)
    bench.engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    (sent,) = (await bench.check.settle([row])).leave
    assert sent.payload != row.payload
    report = _audit(bench, tmp_path, [sent])  # only the new release reached the recipient
    assert report.problems == [] and report.lost == 0, report.problems
    assert (report.offered, report.forwarded, report.withheld_at_send) == (1, 1, 0)


async def test_a_row_withheld_at_send_time_is_withheld_not_lost(
    bench: Bench, tmp_path: Path
) -> None:
    row = await bench.queued(READING)
    bench.now[0] = AFTER_HOURS
    assert (await bench.check.settle([row])).withheld == [row]
    report = _audit(bench, tmp_path, [])
    assert report.problems == [] and report.lost == 0, report.problems
    assert (report.withheld, report.withheld_at_send) == (1, 1)
    assert report.reasons == {"outside_hours": 1}


async def test_a_new_release_that_never_arrived_is_lost_and_named_with_every_entry(
    bench: Bench, tmp_path: Path
) -> None:
    row = await bench.queued(READING)
    bench.engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    (sent,) = (await bench.check.settle([row])).leave
    # The old form arrived, the new one did not: the old does not stand in for it.
    report = _audit(bench, tmp_path, [row])
    assert report.lost == 1
    lost = [p for p in report.problems if "never arrived" in p]
    assert len(lost) == 1, report.problems
    assert f"entry {sent.entry_seq}: {TOPIC} " in lost[0] and "released to oven-maker" in lost[0]
    assert f"{row.entry_seq} (altered" in lost[0] or f"{row.entry_seq} (shared" in lost[0]
    assert f"{sent.entry_seq} (" in lost[0] and "at send time" in lost[0], lost[0]


@pytest.mark.parametrize(
    "name",
    [
        "REDECIDED",
        "WITHHELD",
        "HOURS_ENDED",
        "BEGAN",
        "BEGAN_WITHHELD",
        "BEGAN_UNDECIDED",
        "STOPPED",
        "STOPPED_WITHHELD",
        "MANY",
        "MANY_WITHHELD",
        "MANY_UNDECIDED",
        "MAYBE_SENT",
    ],
)
def test_send_time_texts_begin_as_the_auditor_recognises_them(name: str) -> None:
    from gateway.messages import sendtime_text

    assert getattr(sendtime_text, name)["en"].startswith(AT_SEND), name
