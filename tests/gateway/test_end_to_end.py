"""A message travels the whole way for real: device → Mosquitto → gateway → cloud broker."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson

from gateway.log.verify import verify_db
from tests.gateway.harness import running_gateway

BAKERY = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
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
"""

TRACKER = """
einblick_policy: 1
customer: spedition-meier
name: Spedition Meier
language: en
devices:
  - id: van-7
    name: Van 7
    kind: tracker
    topics:
      - pattern: "owntracks/{user}/van-7"
        stream: location
grants:
  - id: routing
    recipient: logistics
    purpose: Route planning
    legal_basis: consent
    consent: {given_by: "Jan Meier", given_at: 2026-01-01T00:00:00Z}
    devices: [van-7]
    topic: "fleet/{device}"
    fields:
      batt: keep
"""


async def test_each_recipient_gets_exactly_what_the_policy_allows(tmp_path: Path) -> None:
    devices = [("baeckerei-schmidt", "oven-1", "Backofen 1"), ("spedition-meier", "van-7", "Van 7")]
    async with running_gateway(
        tmp_path, {"bakery.yaml": BAKERY, "fleet.yaml": TRACKER}, devices
    ) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        van = await h.device("spedition-meier", "van-7")
        await oven.publish(
            "bakery/oven-1/telemetry",
            b'{"temperature": 181.26, "door_open": false, "operator": "Anna"}',
            1,
        )
        await van.publish(
            "owntracks/jan/van-7",
            b'{"_type":"location","lat":52.19,"lon":7.68,"batt":75,"tid":"J7"}',
            1,
        )
        await h.cloud.wait_for(2)
        by_topic = {m.topic: orjson.loads(m.payload) for m in h.cloud.received}
        assert by_topic == {
            "ovens/baeckerei-schmidt/oven-1": {"temperature": 181.5, "door_open": False},
            "fleet/van-7": {"batt": 75},
        }
        await asyncio.sleep(0.3)
        assert len(h.cloud.received) == 2, "something extra reached the cloud"
        await oven.close()
        await van.close()
        db = h.gateway.config.database_path
    # Every arrival has a committed, verifying log entry; withheld fields are named in it.
    report = verify_db(db)
    assert report.ok, report
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    conn.close()
