"""Retention in a running gateway: the periodic job removes old content, records it in the
customer's log, and `einblick verify` and the customer's bundle still verify; `records` states
the same limits; status projects the disk."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.cli import main as einblick
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import Signer
from gateway.operations.disk import measure
from gateway.operations.metrics import render
from gateway.rights.records import build_records
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY

SCHMIDT = "baeckerei-schmidt"
# The box keeps content 30 days; Schmidt's policy says 7 (it wins for Schmidt).
CONFIG = {
    "metrics:\n": "retention:\n  content_days: 30\n  check_every_s: 0.2\n"
    "disk:\n  sample_every_s: 0.05\nmetrics:\n"
}
POLICY = BAKERY + "retention: {content_days: 7}\n"


def _content_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM content").fetchone()[0])
    finally:
        conn.close()


async def test_a_running_gateway_applies_the_policys_retention_and_every_proof_verifies(
    tmp_path: Path,
) -> None:
    devices = [(SCHMIDT, "oven-1", "Backofen 1")]
    async with running_gateway(
        tmp_path, {"bakery.yaml": POLICY}, devices, config_edits=CONFIG
    ) as h:
        gateway = h.gateway
        db = gateway.config.database_path
        oven = await h.device(SCHMIDT, "oven-1")
        for n in range(5):
            await oven.publish("bakery/oven-1/telemetry", b'{"temperature": %d}' % n, 1)
        await h.cloud.wait_for(5)
        await oven.close()
        assert _content_rows(db) == 5
        runs = gateway.retention.runs
        async with asyncio.timeout(10):  # the job runs, but nothing is old enough yet
            while gateway.retention.runs < runs + 2:
                await asyncio.sleep(0.02)
        assert _content_rows(db) == 5 and not gateway.retention.removed

        # Eight days later by the gateway's clock: past the policy's 7 days, not the box's 30.
        later = datetime.now(UTC) + timedelta(days=8)
        gateway.clock.wall = lambda: later
        async with asyncio.timeout(10):
            while SCHMIDT not in gateway.retention.removed:
                await asyncio.sleep(0.02)
        retention = gateway.status().to_json()["retention"]
        # The part of `status --json` as before: these keys, in this order.
        assert list(retention) == ["every_s", "runs", "last_run", "last_error", "removed"]
        removed = retention["removed"][SCHMIDT]
        assert list(removed) == [
            "customer",
            "content_before",
            "entries_before",
            "contents",
            "topics",
            "entries",
            "at",
        ]
        assert removed["contents"] == 5 and removed["entries"] == 0
        assert removed["content_before"].startswith((later - timedelta(days=7)).date().isoformat())
        assert _content_rows(db) == 0
        # records and the job read the same limits
        records = build_records(gateway.config, gateway.engine.policies(), now=later)
        assert {a["retention"]["content_days"] for a in records["activities"]} == {7}
        assert records["retention"]["log"]["content_days"] == 30

        # the disk projection, measured on the running gateway's real database
        async with asyncio.timeout(10):
            while (gateway.status().to_json()["disk"] or {}).get("growth_bytes_per_day") is None:
                await asyncio.sleep(0.02)
        disk = gateway.status().to_json()["disk"]
        assert disk["database_bytes"] > 0 and disk["free_bytes"] > 0
        assert abs(disk["database_bytes"] - measure(db).database_bytes) < 16 * 1024 * 1024
        metrics = render(gateway.status())
        assert f"einblick_database_bytes {disk['database_bytes']}" in metrics
        assert "einblick_disk_free_bytes " in metrics
        assert "einblick_disk_full_in_seconds " in metrics
        config_path = gateway.config.source
        key = Signer.load(gateway.config.signing_key_path).public

    # After the gateway stopped: the whole log verifies (the CLI), and so does the bundle.
    assert await asyncio.to_thread(einblick, ["verify", "--config", str(config_path)]) == 0
    assert verify_bundle(export_customer(db, SCHMIDT), key).ok
    conn = sqlite3.connect(db)
    kinds = [
        k
        for (k,) in conn.execute(
            "SELECT json_extract(b.doc, '$.kind') FROM entries e JOIN bodies b ON b.id = e.body_id"
            " JOIN chains c ON c.id = e.chain_id WHERE c.name = ? ORDER BY e.idx",
            (SCHMIDT,),
        )
    ]
    conn.close()
    assert kinds.count("retention") == 1
