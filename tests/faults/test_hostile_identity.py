"""A device with valid credentials attacks identities and topics, against a real gateway.

Two customers share the box: werk-nord (press-1, the attacker's credentials, and press-2) and
sued (meter-1). The attacker asks for the gateway's client id and for the other customer's
device's, on the plain and on the TLS listener, with clean and persistent sessions; registers
topics in the other customer's namespace; and tries to make the broker queue for itself. The
other customer loses nothing (audited upstream), and the gateway's session is never replaced.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gateway.cli import main as einblick
from gateway.devices.registry import Registry
from gateway.devices.tls import CertificateAuthority, TlsFiles
from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection
from gateway.messages.tls import TlsSettings
from tests.faults.raw import RawClient
from tests.faults.site import ReliableDevice, Site, body, check_upstream_fields
from tests.faults.summary import record

pytestmark = pytest.mark.fault

SUED = """einblick_policy: 1
customer: sued
name: Werk Süd
language: de
devices:
  - id: meter-1
    name: Zähler 1
    kind: meter
    topics:
      - pattern: "plant-b/meter-1/telemetry"
        stream: telemetry
grants:
  - id: monitoring
    recipient: oven-maker
    purpose: {de: "Zustandsüberwachung", en: "Condition monitoring"}
    legal_basis: contract
    devices: [meter-1]
    topic: "presses/{device}"
    fields:
      seq: keep
      force_kn: keep
"""
VICTIM_TOPIC = "plant-b/meter-1/telemetry"
ATTACKER = "werk-nord.press-1"
TARGETS = ("einblick-gateway", "sued.meter-1")


async def two_customers(tmp_path: Path, *, tls: bool = False) -> tuple[Site, ReliableDevice]:
    """The fault site plus customer sued with meter-1; with ``tls``, a certificate listener."""
    from gateway.devices.ports import free_port

    site = Site(tmp_path)
    await site.setup()
    config = site.config
    (config.policies_path / "sued.yaml").write_text(SUED, encoding="utf-8")
    if tls:
        port = config.broker.port
        text = site.config_path.read_text(encoding="utf-8")
        site.config_path.write_text(
            text.replace(
                f"  port: {port}\n",
                f"  port: {port}\n  tls_port: {free_port()}\n  require_client_cert: true\n",
            ),
            encoding="utf-8",
        )
    registry = Registry(config.data_path / "devices.json")
    _, password = registry.add("sued", "meter-1", name="Zähler 1", kind="meter")
    assert password is not None
    registry.save()
    site.passwords["meter-1"] = password
    victim = ReliableDevice(config.broker.port, "sued", "meter-1", password)
    return site, victim


async def replaced(site: Site) -> dict[str, int]:
    """Per username: how often a new login replaced its session (status, from Mosquitto's log)."""
    status = await site.status()
    return {
        str(r["who"]): int(r["count"])
        for r in status["refusals"]
        if r["kind"] == "session_replaced"
    }


async def attack(site: Site, target: str, *, clean: bool, bundle: Path | None) -> None:
    """Log in with press-1's own credentials, asking for ``target``'s client id."""
    config = site.config
    if bundle is None:
        raw = RawClient(
            config.broker.port,
            ATTACKER,
            site.passwords["press-1"],
            client_id=target,
            clean_session=clean,
        )
        try:
            assert await raw.connect() == 0  # accepted: as itself, not as the target
        finally:
            await raw.close()
        return
    assert config.broker.tls_port is not None
    connection = MqttConnection(
        Endpoint(
            "127.0.0.1",
            config.broker.tls_port,
            target,
            tls=TlsSettings(
                str(bundle / "ca.crt"), str(bundle / "client.crt"), str(bundle / "client.key")
            ),
        ),
        clean_session=clean,
    )
    try:
        await connection.open()
    finally:
        await connection.close()


@pytest.mark.parametrize("listener", ["plain", "tls"])
async def test_client_id_takeover_of_the_gateway_and_of_another_customers_device_is_refused(
    tmp_path: Path, listener: str
) -> None:
    site, victim = await two_customers(tmp_path, tls=listener == "tls")
    started = time.monotonic()
    try:
        bundle = None
        if listener == "tls":
            ca = CertificateAuthority.load(TlsFiles(site.config.data_path / "tls"))
            bundle = ca.issue_client(ATTACKER, tmp_path / "attacker").cert_file.parent
        await site.start_gateway()
        before = (await site.status())["device_broker"]
        assert before["connected"]
        own = site.device("press-1")  # the attacker's own device, connected and idle
        await own.publish(0, "factory/press-1/telemetry", body("press-1", 0))
        await own.drain()
        total = count = 200
        attacks = 0
        for seq in range(total):
            await victim.publish(seq, VICTIM_TOPIC, body("meter-1", seq))
            if seq % 20 == 10:
                for target in TARGETS:
                    await attack(site, target, clean=seq % 40 == 10, bundle=bundle)
                    attacks += 1
        await victim.drain()
        await site.wait_until(
            lambda: arrived(site, "presses/meter-1") >= count, 30, "meter-1 upstream"
        )
        await site.wait_until(site.outbox_empty, 30, "the outbox to drain")
        # The attacker's first login replaced its own idle device's session, and only that.
        await site.wait_until(
            lambda: _replaced_at_least(site, ATTACKER), 10, "the replaced session to be counted"
        )
        counted = await replaced(site)
        assert set(counted) == {ATTACKER}, counted
        status = await site.status()
        after = status["device_broker"]
        assert after["connected"] and after["since"] == before["since"], (before, after)
        assert status["refusal_totals"]["session_replaced"] == counted[ATTACKER]
        assert victim.reconnects == 0
        seqs = [
            orjson.loads(m.payload)["seq"]
            for m in site.spies["oven-maker"].received
            if m.topic == "presses/meter-1"
        ]
        assert sorted(set(seqs)) == list(range(total))
        check_upstream_fields(site, exact=False)
        result = await site.audit([own, victim])
        row = record(
            f"client-id takeover ({listener})",
            result.summary,
            faults=0,
            bad_inputs=attacks,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0
        await own.close()
        await victim.close()
    finally:
        await site.teardown()


async def _replaced_at_least(site: Site, who: str) -> bool:
    return (await replaced(site)).get(who, 0) >= 1


async def test_cross_customer_topics_are_refused_and_a_violating_entry_costs_only_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, victim = await two_customers(tmp_path)
    started = time.monotonic()
    try:
        config = str(site.config_path)
        refused = {
            VICTIM_TOPIC: "outside customer 'werk-nord'",  # the other customer's device topic
            "#": "outside customer 'werk-nord'",
            "devices/sued/spy/telemetry": "outside customer 'werk-nord'",
            "devices/werk-nord/+/telemetry": "reaches past the device's own prefix",
            "devices/werk-nord/press-2/telemetry": "not under the device's own prefix",
        }
        for topic, why in refused.items():
            args = ["--customer", "werk-nord", "--name", "Spion", "--id", "spy", "--topic", topic]
            code = einblick(["device", "add", "--config", config, *args])
            err = capsys.readouterr().err
            assert code == 2 and why in err and "Traceback" not in err, (topic, err)
        registered = Registry(site.config.data_path / "devices.json").devices()
        assert {d.device for d in registered} == {"press-1", "press-2", "meter-1"}
        # An entry an older version accepted: '#' for werk-nord's spy. Before, the gateway
        # refused to start (the topic overlaps every device) and the spy read everyone's data.
        path = site.config.data_path / "devices.json"
        registry = Registry(path)
        registry.add("werk-nord", "spy", name="Spion", kind="probe")
        registry.save()
        data = orjson.loads(path.read_bytes())
        for device in data["devices"]:
            if device["device"] == "spy":
                device["topics"] = [["#", "telemetry"]]
        path.write_bytes(orjson.dumps(data))
        await site.start_gateway()
        status = await site.status()
        problems = status["device_problems"]
        assert [(p["customer"], p["device"]) for p in problems] == [("werk-nord", "spy")]
        assert "devices.json" in problems[0]["error"] and "'#'" in problems[0]["error"]
        neighbour = site.device("press-2")
        count = 100
        for seq in range(count):
            await victim.publish(seq, VICTIM_TOPIC, body("meter-1", seq))
            await neighbour.publish(seq, "factory/press-2/telemetry", body("press-2", seq))
        await victim.drain()
        await neighbour.drain()
        await site.wait_until(
            lambda: arrived(site, "presses/meter-1") >= count, 30, "meter-1 upstream"
        )
        # meter-1's arrivals say nothing of press-2's: the outbox can be empty before press-2's
        # last messages are decided, so wait until all of them are committed first.
        await site.wait_until(
            lambda: _committed_at_least(site, 2 * count), 30, "both devices' messages committed"
        )
        await site.wait_until(site.outbox_empty, 30, "the outbox to drain")
        result = await site.audit([victim, neighbour])
        row = record(
            "cross-customer topic registration",
            result.summary,
            faults=0,
            bad_inputs=len(refused) + 1,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0 and row.offered == 200
        await victim.close()
        await neighbour.close()
    finally:
        await site.teardown()


async def test_a_device_cannot_queue_messages_for_itself(tmp_path: Path) -> None:
    site, victim = await two_customers(tmp_path)
    started = time.monotonic()
    try:
        await site.start_gateway()
        port, password = site.config.broker.port, site.passwords["press-1"]
        sent = 50
        # A persistent session that subscribes to its own topic and to everything, then
        # publishes 5 MB and never reads: with a read right, the broker would hold all of it
        # for this session (in flight or queued) for as long as the session lives.
        raw = RawClient(port, ATTACKER, password, clean_session=False)
        try:
            assert await raw.connect() == 0
            for mid, topic in enumerate((b"factory/press-1/telemetry", b"#"), start=1):
                await raw.subscribe(topic, mid)
            for seq in range(sent):
                payload = orjson.dumps({"seq": seq, "force_kn": 1, "pad": "x" * 100_000})
                await raw.publish(b"factory/press-1/telemetry", payload)
            await site.wait_until(
                lambda: _received_at_least(site, sent), 30, "the uploads to reach the gateway"
            )
            back = await raw.ping_fence()
        finally:
            await raw.close()
        publishes = [b for b in _packet_types(back) if b == 3]
        assert publishes == [], f"{len(publishes)} messages ({len(back)} bytes) sent back to it"
        count = 50
        for seq in range(count):
            await victim.publish(seq, VICTIM_TOPIC, body("meter-1", seq))
        await victim.drain()
        await site.wait_until(
            lambda: arrived(site, "presses/meter-1") >= count, 30, "meter-1 upstream"
        )
        await site.wait_until(site.outbox_empty, 30, "the outbox to drain")
        result = await site.audit([victim])
        row = record(
            "self-queueing device",
            result.summary,
            faults=0,
            bad_inputs=sent,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0 and row.offered == 50
        await victim.close()
    finally:
        await site.teardown()


def _packet_types(stream: bytes) -> list[int]:
    """MQTT packet types in a byte stream of whole packets (3: PUBLISH, 4: PUBACK, 9: SUBACK)."""
    types, index = [], 0
    while index < len(stream):
        kind = stream[index] >> 4
        length, shift, index = 0, 0, index + 1
        while True:
            byte = stream[index]
            index += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        types.append(kind)
        index += length
    return types


def arrived(site: Site, topic: str) -> int:
    """Distinct messages the oven maker's broker received on ``topic``."""
    return len({m.payload for m in site.spies["oven-maker"].received if m.topic == topic})


async def _received_at_least(site: Site, count: int) -> bool:
    status = await site.status()
    return int(status["pipeline"]["received"]) >= count


async def _committed_at_least(site: Site, count: int) -> bool:
    status = await site.status()
    return int(status["pipeline"]["committed"]) >= count
