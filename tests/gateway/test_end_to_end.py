"""A message travels the whole way for real: device → Mosquitto → gateway → cloud broker."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson

from gateway.log.verify import verify_db
from gateway.messages.endpoint import MqttError
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
        # Fences, one per recipient: each forwarder sends its outbox in order, so anything extra
        # committed for a recipient before its fence would reach the cloud before the fence.
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 20.0}', 1)
        await van.publish("owntracks/jan/van-7", b'{"_type":"location","batt":1}', 1)
        await h.cloud.wait_for(4)
        fences = [orjson.loads(m.payload) for m in h.cloud.received[2:]]
        assert len(h.cloud.received) == 4, "something extra reached the cloud"
        assert sorted(fences, key=str) == [{"batt": 1}, {"temperature": 20.0}], (
            f"something extra reached the cloud: {fences}"
        )
        # The spy can see a message before the cloud broker's PUBACK reaches the gateway: wait
        # for the acknowledgements (the rows leave the outbox) before stopping.
        async with asyncio.timeout(10):
            while sum(h.gateway.outbox.queues.rows.values()):
                await asyncio.sleep(0.02)
        await oven.close()
        await van.close()
        db = h.gateway.config.database_path
    # Every arrival has a committed, verifying log entry; withheld fields are named in it.
    report = verify_db(db)
    assert report.ok, report
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    conn.close()


async def _reasons(db: Path) -> list[tuple[str, str | None, str | None]]:
    """(customer, device, reason code) of every withheld decision entry, oldest first."""
    from gateway.log.reader import LogReader

    reader = await LogReader.open(db)
    try:
        rows = await reader.page(limit=1000)
        found = []
        for row in reversed(rows):
            detail = await reader.get(row.seq)
            if row.kind == "decision" and row.outcome == "withheld":
                found.append((row.customer, row.device, detail.reason))
        return found
    finally:
        await reader.close()


async def test_bad_input_is_withheld_with_a_reason_and_the_gateway_keeps_running(
    tmp_path: Path,
) -> None:
    from gateway.devices.registry import Registry

    devices = [("baeckerei-schmidt", "oven-1", "Backofen 1")]
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, devices) as h:
        # A device registered for a customer that has no policy at all: an unknown device.
        registry = Registry(h.gateway.config.data_path / "devices.json")
        _, stray_password = registry.add(
            "nobody",
            "probe-9",
            name="Probe",
            kind="probe",
            topics=(("devices/nobody/probe-9/{stream}", "telemetry"),),
        )
        registry.save()
        h.gateway.devices.reload_devices()
        h.passwords[("nobody", "probe-9")] = stray_password or ""
        oven = await h.device("baeckerei-schmidt", "oven-1")
        # Mosquitto re-reads its password file and ACL together on SIGHUP: once the new
        # device's login is taken, its ACL is in force too.
        async with asyncio.timeout(10):
            while True:
                try:
                    stray = await h.device("nobody", "probe-9")
                    break
                except MqttError:
                    await asyncio.sleep(0.05)
        topic = "bakery/oven-1/telemetry"
        await oven.publish(topic, b'{"temperature": 18', 1)  # malformed JSON
        await oven.publish(topic, b'{"temperature": "\xff\xfe"}', 1)  # invalid UTF-8
        # Over the pipeline's 256 KiB but under the broker's packet limit (payload + 65 KiB):
        # recorded as too large. Larger packets are refused by the broker (tests/faults/test_hostile.py).
        await oven.publish(topic, b'{"pad": "' + b"x" * (300 * 1024) + b'"}', 1)
        await stray.publish("devices/nobody/probe-9/telemetry", b'{"temperature": 20}', 1)
        await oven.publish(topic, b'{"temperature": 180.1, "door_open": true}', 1)  # still running
        await h.cloud.wait_for(1)
        await h.wait_committed(5)
        # The fence: the oven's recipient gets its outbox in order, so had any of the bad
        # messages been forwarded, it would have arrived before this one.
        await oven.publish(topic, b'{"temperature": 20.0}', 1)
        await h.cloud.wait_for(2)
        assert [orjson.loads(m.payload) for m in h.cloud.received] == [
            {"temperature": 180.0, "door_open": True},
            {"temperature": 20.0},
        ]
        await oven.close()
        await stray.close()
        reasons = await _reasons(h.gateway.config.database_path)
    codes = [code for _, _, code in reasons]
    assert codes[:3] == ["not_json", "invalid_utf8", "too_large"], reasons
    assert ("_gateway", None, "unknown_device") in reasons


async def test_changed_policy_applies_to_the_next_message_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    devices = [("baeckerei-schmidt", "oven-1", "Backofen 1")]
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, devices) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        topic = "bakery/oven-1/telemetry"
        await oven.publish(topic, b'{"temperature": 181.26, "door_open": false}', 1)
        await h.cloud.wait_for(1)
        policy_file = h.directory / "policies" / "bakery.yaml"
        first_version = h.gateway.policies.files[policy_file].version
        # The customer stops sharing the door state.
        policy_file.write_text(BAKERY.replace("      door_open: keep\n", ""), encoding="utf-8")
        async with asyncio.timeout(10):
            while h.gateway.policies.files[policy_file].version == first_version:
                await asyncio.sleep(0.05)
        await oven.publish(topic, b'{"temperature": 181.26, "door_open": true}', 1)
        await h.cloud.wait_for(2)
        assert orjson.loads(h.cloud.received[1].payload) == {"temperature": 181.5}
        # A broken edit: the last good policy keeps running, and the error names file and line.
        policy_file.write_text(
            BAKERY.replace("legal_basis: contract", "legal_basis: because"), encoding="utf-8"
        )
        async with asyncio.timeout(10):
            while not h.gateway.policies.errors():
                await asyncio.sleep(0.05)
        error = h.gateway.status().to_json()["policies"][0]["error"]
        assert error is not None and "bakery.yaml:" in error and "legal_basis" in error
        await oven.publish(topic, b'{"temperature": 100.0, "door_open": true}', 1)
        await h.cloud.wait_for(3)
        assert orjson.loads(h.cloud.received[2].payload) == {"temperature": 100.0}
        await oven.close()
