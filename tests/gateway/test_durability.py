"""Nothing lost: kill -9 of the gateway mid-stream, and an upstream that goes away and comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.devices.registry import Registry
from gateway.log.verify import verify_db
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.scaffold import InitOptions, init_directory
from tests.gateway.harness import running_gateway

POLICY = """
einblick_policy: 1
customer: werk-nord
name: Werk Nord
language: de
devices:
  - id: press-1
    name: Presse 1
    kind: press
    topics:
      - pattern: "factory/press-1/telemetry"
        stream: telemetry
  - id: press-2
    name: Presse 2
    kind: press
    topics:
      - pattern: "factory/press-2/telemetry"
        stream: telemetry
grants:
  - id: monitoring
    recipient: oven-maker
    purpose: {de: "Zustandsüberwachung", en: "Condition monitoring"}
    legal_basis: contract
    devices: [press-1, press-2]
    topic: "presses/{device}"
    fields:
      seq: keep
      force_kn: keep
"""


class Spy:
    """A persistent-session subscriber on the cloud broker: it misses nothing across restarts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[Inbound] = []
        self.connection: MqttConnection | None = None

    async def connect(self) -> None:
        self.connection = MqttConnection(
            Endpoint("127.0.0.1", self.port, "durable-spy"),
            on_message=self._got,
            manual_ack=True,
            clean_session=False,
        )
        await self.connection.open()
        await self.connection.subscribe("#", 1)

    def _got(self, message: Inbound) -> None:
        self.received.append(message)
        message.ack()

    def seqs(self, topic: str | None = None) -> list[int]:
        return [
            int(orjson.loads(m.payload)["seq"])
            for m in self.received
            if topic is None or m.topic == topic
        ]


async def test_kill_9_mid_stream_loses_nothing(tmp_path: Path) -> None:
    total = 10_000
    cloud = Mosquitto(
        MosquittoSettings(directory=tmp_path / "cloud", port=free_port(), anonymous=True)
    )
    cloud.write_files([])
    await cloud.start()
    directory = tmp_path / "edge"
    config_path = init_directory(
        InitOptions(
            directory,
            broker_port=free_port(),
            upstream_url=f"mqtt://127.0.0.1:{cloud.settings.port}",
        )
    )
    for old in (directory / "policies").glob("*.yaml"):
        old.unlink()
    (directory / "policies" / "werk-nord.yaml").write_text(POLICY, encoding="utf-8")
    # One device sending 10,000 messages at full speed is a flood by default (100/s); here it
    # stands for a whole plant, so lift its limit.
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text.replace(
            "pipeline:\n", "pipeline:\n  device_max_rate: 1000000\n  device_burst: 1000000\n"
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    registry = Registry(config.data_path / "devices.json")
    _, password = registry.add("werk-nord", "press-1", name="Presse 1", kind="press")
    registry.save()
    spy = Spy(cloud.settings.port)
    await spy.connect()
    log_path = tmp_path / "gateway.log"
    gateway = await start_gateway(config_path, log_path)
    device = MqttConnection(
        Endpoint(
            "127.0.0.1",
            config.broker.port,
            "werk-nord.press-1",
            username="werk-nord.press-1",
            password=password,
        )
    )
    try:
        async with asyncio.timeout(120):
            await device.open()

            async def publish_all() -> None:
                pending: list[asyncio.Future[None]] = []
                for seq in range(total):
                    body = orjson.dumps(
                        {"seq": seq, "force_kn": 120 + seq % 7, "operator": "M. Keller"}
                    )
                    pending.append(device.publish("factory/press-1/telemetry", body, 1))
                    if len(pending) >= 200:
                        await asyncio.gather(*pending)
                        pending.clear()
                await asyncio.gather(*pending)

            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(publish_all(), name="device-stream")
                while len(spy.received) < total // 4:
                    await asyncio.sleep(0.01)
                os.kill(gateway.pid, signal.SIGKILL)  # mid-stream, no warning
                await gateway.wait()
                await asyncio.sleep(0.3)
                gateway = await start_gateway(config_path, log_path)
            while len(set(spy.seqs())) < total:
                await asyncio.sleep(0.05)
    except TimeoutError:
        missing = sorted(set(range(total)) - set(spy.seqs()))
        raise AssertionError(
            f"{len(missing)} of {total} never arrived upstream (first: {missing[:10]})"
        ) from None
    finally:
        await device.close()
        await stop_gateway(gateway)
        if spy.connection is not None:
            await spy.connection.close()
        await cloud.stop()
    seqs = spy.seqs()
    duplicates = len(seqs) - len(set(seqs))
    print(
        f"kill -9 at ~{total // 4}: {len(set(seqs))} distinct of {total}, {duplicates} duplicates"
    )
    assert set(seqs) == set(range(total))
    # At-least-once: what was in flight at the kill may come twice, never more than the window
    # (1,000 unacknowledged from the broker + 500 unacknowledged upstream).
    assert duplicates <= 1500
    # No field outside the grant ever left.
    assert all(set(orjson.loads(m.payload)) == {"seq", "force_kn"} for m in spy.received)
    report = verify_db(config.database_path)
    assert report.ok, report.summary()
    assert report.entries >= total


async def test_upstream_outage_queues_and_delivers_in_order(tmp_path: Path) -> None:
    devices = [("werk-nord", "press-1", "Presse 1"), ("werk-nord", "press-2", "Presse 2")]
    async with running_gateway(tmp_path, {"werk-nord.yaml": POLICY}, devices) as h:
        spy = Spy(h.cloud.broker.settings.port)
        await spy.connect()
        await h.cloud.broker.stop()  # the recipient's cloud is gone
        p1 = await h.device("werk-nord", "press-1")
        p2 = await h.device("werk-nord", "press-2")
        for seq in range(300):
            await p1.publish(
                "factory/press-1/telemetry", orjson.dumps({"seq": seq, "force_kn": 1}), 1
            )
            await p2.publish(
                "factory/press-2/telemetry", orjson.dumps({"seq": seq, "force_kn": 2}), 1
            )
        await h.wait_committed(600)
        forwarder = h.gateway.forwarders["oven-maker"]
        assert not forwarder.state.connected
        assert h.gateway.status().to_json()["upstreams"][0]["outbox_depth"] == 600
        await h.cloud.broker.start()  # back after the outage, same port
        await spy.connect()
        async with asyncio.timeout(30):
            while len(spy.received) < 600:
                await asyncio.sleep(0.05)
        # Per device, in the order the device sent them; nothing lost.
        assert spy.seqs("presses/press-1") == list(range(300))
        assert spy.seqs("presses/press-2") == list(range(300))
        async with asyncio.timeout(5):
            while h.gateway.status().to_json()["upstreams"][0]["outbox_depth"]:
                await asyncio.sleep(0.05)
        await p1.close()
        await p2.close()
        assert spy.connection is not None
        await spy.connection.close()


async def test_a_clean_stop_right_after_delivery_leaves_nothing_to_send_again(
    tmp_path: Path,
) -> None:
    """Deletes of delivered rows are batched; stopping inside that batch window must still
    delete them, or every restart would send the last messages twice."""
    devices = [("werk-nord", "press-1", "Presse 1")]
    async with running_gateway(tmp_path, {"werk-nord.yaml": POLICY}, devices) as h:
        press = await h.device("werk-nord", "press-1")
        for seq in range(50):
            await press.publish(
                "factory/press-1/telemetry", orjson.dumps({"seq": seq, "force_kn": 1}), 1
            )
        database = h.gateway.config.database_path
        async with asyncio.timeout(10):
            while len(h.cloud.received) < 50:
                await asyncio.sleep(0)
        forwarders = h.gateway.forwarders.values()
        while any(f.state.in_flight for f in forwarders):
            await asyncio.sleep(0)
        # Every PUBACK is in; stop at once, inside the delete batch's 20 ms.
        assert sum(f.state.sent for f in forwarders) == 50
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    finally:
        conn.close()
