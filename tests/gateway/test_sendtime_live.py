"""Send time means the current policy, through a whole gateway: rows queued while the recipient's
cloud is down leave under the policy version in force when the cloud is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from gateway.log.keys import load_public_key
from gateway.log.reader import LogReader
from gateway.log.verify import verify_db
from tests.gateway.harness import running_gateway
from tests.gateway.test_consent import POLICY, queued_in_outage


async def test_a_field_removed_while_rows_wait_is_not_sent_and_the_log_says_why(
    tmp_path: Path,
) -> None:
    async with running_gateway(
        tmp_path, {"berg.yaml": POLICY}, [("berg-partner", "room-1", "Meeting room")]
    ) as h:
        room = await queued_in_outage(h, 3)
        before = h.gateway.engine.policy("berg-partner")
        assert before is not None
        # The customer removes 'seq' from the grant while the three rows wait.
        policy_file = h.directory / "policies" / "berg.yaml"
        policy_file.write_text(POLICY.replace("      seq: keep\n", ""), encoding="utf-8")
        async with asyncio.timeout(15):
            while (now := h.gateway.engine.policy("berg-partner")) is None or now is before:
                await asyncio.sleep(0.05)
        version = now.version
        await h.cloud.broker.start()
        assert h.cloud.connection is not None
        await h.cloud.connection.close()
        h.cloud.received.clear()
        await h.cloud.listen()
        # A fence after the three: a message sent now leaves after every queued row (one link,
        # rows in id order), so a fourth copy of a queued row would arrive before it.
        await room.publish("zigbee2mqtt/room-1", orjson.dumps({"occupancy": False, "seq": 4}), 1)
        await h.cloud.wait_for(4, timeout=20)
        assert [orjson.loads(m.payload) for m in h.cloud.received] == [{"occupancy": True}] * 3 + [
            {"occupancy": False}
        ]
        assert h.gateway.sendtime.redecided == 3
        await room.close()
        db = h.gateway.config.database_path
        public_key = load_public_key(h.directory / "data" / "keys" / "signing.pub")
    reader = await LogReader.open(db)
    try:
        rows = await reader.page(customer="berg-partner", limit=100)
        details = [await reader.get(r.seq) for r in reversed(rows)]
    finally:
        await reader.close()
    again = [d for d in details if "Re-decided at send time" in d.row.text_en]
    assert len(again) == 3
    assert all(f"under version {version[:12]}" in d.row.text_en for d in again)
    report = verify_db(db, public_key=public_key)
    assert report.ok, report.summary()
