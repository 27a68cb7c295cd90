"""The benchmark's baseline forwarder (gateway/bench/forwarder.py) as its own process between
two real brokers: it says when it is ready, passes every message from A to B with its topic and
bytes, in order, and stops on SIGTERM with exit status 0."""

from __future__ import annotations

import asyncio
import signal
import sys

from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from tests.conftest import BrokerFactory


async def test_every_message_passes_from_a_to_b_in_order(brokers: BrokerFactory) -> None:
    a, b = await brokers("a"), await brokers("b")
    forwarder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.bench.forwarder", str(a.settings.port), str(b.settings.port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    received: list[Inbound] = []
    arrived = asyncio.Event()

    def on_message(message: Inbound) -> None:
        received.append(message)
        arrived.set()

    cloud = MqttConnection(Endpoint("127.0.0.1", b.settings.port, "cloud"), on_message=on_message)
    device = MqttConnection(Endpoint("127.0.0.1", a.settings.port, "device"))
    try:
        assert forwarder.stdout is not None
        async with asyncio.timeout(20):
            assert await forwarder.stdout.readline() == b"ready\n"
        await cloud.open()
        await cloud.subscribe("#", 1)
        await device.open()
        # "ready" is said before its subscription on A is in place: knock until one passes.
        async with asyncio.timeout(20):
            while not received:
                await device.publish("probe/knock", b"knock", 1)
                try:
                    async with asyncio.timeout(0.2):
                        await arrived.wait()
                except TimeoutError:
                    pass
        received.clear()
        payloads = [b'{"n":%d}' % i for i in range(20)] + [b"\x00\xff"]
        for payload in payloads:
            await device.publish("plant/oven-1/telemetry", payload, 1)
        async with asyncio.timeout(20):
            while len([m for m in received if m.topic.startswith("plant/")]) < len(payloads):
                arrived.clear()
                await arrived.wait()
        got = [m.payload for m in received if m.topic == "plant/oven-1/telemetry"]
        assert got == payloads
    finally:
        await device.close()
        await cloud.close()
        if forwarder.returncode is None:
            forwarder.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await forwarder.wait()
    assert code == 0
