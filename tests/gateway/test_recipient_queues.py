"""A recipient's queue at its quota, in a running gateway: withheld and recorded, or intake held."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.log.reader import LogReader
from gateway.operations.metrics import render
from policies.decision import Decision, Outcome
from tests.gateway.harness import Harness, running_gateway
from tests.gateway.test_durability import POLICY

DEVICES = [("werk-nord", "press-1", "Presse 1"), ("werk-nord", "press-2", "Presse 2")]
QUOTA = {"max_rows: 10000000": "max_rows: 10000000\n  recipient_max_rows: 20"}


async def _publish(h: Harness, count: int) -> None:
    press = await h.device("werk-nord", "press-1")
    for seq in range(count):
        await press.publish(
            "factory/press-1/telemetry", orjson.dumps({"seq": seq, "force_kn": 1}), 1
        )
    await press.close()


async def _cloud_back(h: Harness) -> None:
    await h.cloud.broker.start()
    assert h.cloud.connection is not None
    await h.cloud.connection.close()
    await h.cloud.listen()


def _seqs(h: Harness) -> set[int]:
    return {int(orjson.loads(m.payload)["seq"]) for m in h.cloud.received}


async def test_at_the_quota_releases_are_recorded_withheld_and_intake_goes_on(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"werk.yaml": POLICY}, DEVICES, config_edits=QUOTA) as h:
        await h.cloud.broker.stop()
        await _publish(h, 60)
        await h.wait_committed(60)
        status = h.gateway.status().to_json()
        queue = next(u for u in status["upstreams"] if u["recipient"] == "oven-maker")["queue"]
        assert queue["rows"] == 20 and queue["quota_rows"] == 20
        assert queue["withheld_at_quota"] == 40 and queue["when_full"] == "withhold"
        assert (
            not status["pipeline"]["outbox_full"] and status["pipeline"]["paused_because"] is None
        )
        assert h.gateway.device_state.connected, "a full recipient queue paused intake"
        metrics = render(status)
        assert 'einblick_withheld_at_quota_total{recipient="oven-maker"} 40' in metrics
        assert 'einblick_outbox_quota_rows{recipient="oven-maker"} 20' in metrics
        share = 'recipient="oven-maker",customer="werk-nord"'
        assert f"einblick_withheld_at_share_total{{{share}}} 40" in metrics
        assert f"einblick_outbox_share_rows{{{share}}} 20" in metrics
        await _cloud_back(h)
        async with asyncio.timeout(15):
            while (
                len(_seqs(h)) < 20 or h.gateway.status().to_json()["upstreams"][0]["outbox_depth"]
            ):
                await asyncio.sleep(0.05)
        assert _seqs(h) == set(range(20)), "the queued releases are the first 20, all delivered"
        # Once it drained, the recipient's queue takes releases again.
        await _publish(h, 1)
        await h.wait_committed(61)
        queue = h.gateway.status().to_json()["upstreams"][0]["queue"]
        assert queue["withheld_at_quota"] == 40
        db = h.gateway.config.database_path
    reader = await LogReader.open(db)
    try:
        rows = await reader.page(customer="werk-nord", limit=200)
        details = [await reader.get(r.seq) for r in rows]
    finally:
        await reader.close()
    full = [d for d in details if d.reason == "recipient_queue_full"]
    assert len(full) == 40
    assert {d.row.recipient for d in full} == {"oven-maker"}
    assert all(d.row.outcome == "withheld" and d.content is None for d in full)
    assert all("queue kept for it on this box is full" in d.row.text_en for d in full)
    assert all("Warteschlange" in d.row.text_de for d in full)
    # What the grant would have released is named as withheld.
    assert all({"seq", "force_kn"} <= set(d.withheld) for d in full)


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    """Wait for ``condition``; False if it did not come true within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        return False
    return True


async def test_a_hold_recipient_at_its_quota_pauses_intake_and_loses_nothing(
    tmp_path: Path,
) -> None:
    edits = {"max_rows: 10000000": "max_rows: 10000000\n  recipient_max_rows: 20"}
    edits["when_recipient_full: withhold"] = "when_recipient_full: hold"
    async with running_gateway(tmp_path, {"werk.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        await h.cloud.broker.stop()
        await _publish(h, 100)
        async with asyncio.timeout(10):
            while h.gateway.device_state.connected:
                await asyncio.sleep(0.05)
        status = h.gateway.status().to_json()
        assert status["pipeline"]["outbox_full"]
        why = status["pipeline"]["paused_because"]
        assert "oven-maker" in why and "werk-nord" in why, status["pipeline"]
        # The device link's state says the same reason (not "outbox full": the outbox is not).
        assert h.gateway.device_state.error == f"paused: {why}"
        queue = status["upstreams"][0]["queue"]
        assert queue["holding"] and queue["withheld_at_quota"] == 0
        assert h.gateway.pipeline is not None
        assert 20 <= h.gateway.pipeline.stats.committed < 100  # the rest waits in the broker
        await _cloud_back(h)
        async with asyncio.timeout(30):
            while len(_seqs(h)) < 100:
                await asyncio.sleep(0.05)
        assert _seqs(h) == set(range(100))
        # Delivered rows leave the queue's count when their (batched) delete commits: the hold
        # ends then, and the device link resumes.
        resumed = await _until(
            lambda: (
                bool(h.gateway.device_state.connected)
                and h.gateway.status().to_json()["pipeline"]["paused_because"] is None
            ),
            30,
        )
        queues = h.gateway.outbox.queues
        assert resumed, (
            f"the hold did not end: queue rows {dict(queues.rows)}, holding "
            f"{sorted(queues.holding_shares)}, device link {h.gateway.device_state}"
        )
        # Messages queued when the link stepped back were left to the broker, not decided twice
        # (tests/gateway/test_pipeline.py: a session stepped back from).
        assert h.gateway.pipeline.stats.committed < 2 * 100, h.gateway.pipeline.stats


async def test_a_batch_that_fails_before_its_commit_takes_back_what_its_quota_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Releases are counted into their share when admitted; if building the batch's entries then
    raises, nothing was committed, so the count must be given back (else the share shrinks for
    good with every such failure)."""
    async with running_gateway(tmp_path, {"werk.yaml": POLICY}, DEVICES, config_edits=QUOTA) as h:
        await h.cloud.broker.stop()
        pipeline = h.gateway.pipeline
        assert pipeline is not None
        release = Decision(
            customer="werk-nord",
            device="press-1",
            recipient="oven-maker",
            outcome=Outcome.SHARED,
            grant="monitoring",
            topic="presses/press-1",
            payload=b'{"seq": 1}',
            shared=("seq",),
        )
        # The quota's own 20 rows, then one past it: counted as withheld at the quota.
        batch = [release] * 21

        def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("entry could not be drafted")

        monkeypatch.setattr("gateway.messages.drafting.draft_from_decision", broken)
        with pytest.raises(RuntimeError):
            await pipeline.record(batch, datetime.now(UTC))
        queue = h.gateway.status().to_json()["upstreams"][0]["queue"]
        share = queue["customers"]["werk-nord"]
        assert (queue["rows"], queue["bytes"], queue["withheld_at_quota"]) == (0, 0, 0), queue
        assert (share["rows"], share["withheld_at_quota"]) == (0, 0), share
        # The same batch once drafting works: the whole share is there to take it.
        monkeypatch.undo()
        rows = await pipeline.record(batch, datetime.now(UTC))
        assert len(rows) == 20
        assert h.gateway.status().to_json()["upstreams"][0]["queue"]["withheld_at_quota"] == 1
