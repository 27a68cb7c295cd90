"""The benchmark's baseline forwarder (gateway/bench/forwarder.py) as its own process between
two real brokers: it says when its subscription is in place, passes every message from A to B
with its topic and bytes, in order, and stops on SIGTERM with exit status 0; with ``--session``
it gets, after a restart, what was published while it was stopped."""

from __future__ import annotations

import asyncio
import signal
import sys

from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from tests.conftest import BrokerFactory


async def _start(a: int, b: int, *options: str) -> asyncio.subprocess.Process:
    forwarder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.bench.forwarder", str(a), str(b), *options,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert forwarder.stdout is not None
    async with asyncio.timeout(20):
        assert await forwarder.stdout.readline() == b"ready\n"
    return forwarder


async def _stop(forwarder: asyncio.subprocess.Process) -> int:
    if forwarder.returncode is None:
        forwarder.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        return await forwarder.wait()


class _Cloud:
    """What arrives on B, and a wait for the n-th arrival."""

    def __init__(self) -> None:
        self.received: list[Inbound] = []
        self._arrived = asyncio.Event()

    def on_message(self, message: Inbound) -> None:
        self.received.append(message)
        self._arrived.set()

    async def until(self, count: int) -> list[bytes]:
        async with asyncio.timeout(20):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [m.payload for m in self.received]


async def test_every_message_passes_from_a_to_b_in_order(brokers: BrokerFactory) -> None:
    a, b = await brokers("a"), await brokers("b")
    forwarder = await _start(a.settings.port, b.settings.port)
    seen = _Cloud()
    cloud = MqttConnection(
        Endpoint("127.0.0.1", b.settings.port, "cloud"), on_message=seen.on_message
    )
    device = MqttConnection(Endpoint("127.0.0.1", a.settings.port, "device"))
    try:
        await cloud.open()
        await cloud.subscribe("#", 1)
        await device.open()
        # "ready" came after the broker confirmed the subscription: the very first message
        # published now passes (no knocking until one does).
        payloads = [b'{"n":%d}' % i for i in range(20)] + [b"\x00\xff"]
        for payload in payloads:
            await device.publish("plant/oven-1/telemetry", payload, 1)
        assert await seen.until(len(payloads)) == payloads
        assert {m.topic for m in seen.received} == {"plant/oven-1/telemetry"}
    finally:
        await device.close()
        await cloud.close()
        code = await _stop(forwarder)
    assert code == 0


async def test_a_persistent_session_gets_what_was_published_while_it_was_stopped(
    brokers: BrokerFactory,
) -> None:
    a, b = await brokers("a"), await brokers("b")
    session = ("--session", "bench-forwarder")
    assert await _stop(await _start(a.settings.port, b.settings.port, *session)) == 0
    seen = _Cloud()
    cloud = MqttConnection(
        Endpoint("127.0.0.1", b.settings.port, "cloud"), on_message=seen.on_message
    )
    device = MqttConnection(Endpoint("127.0.0.1", a.settings.port, "device"))
    forwarder: asyncio.subprocess.Process | None = None
    try:
        await cloud.open()
        await cloud.subscribe("#", 1)
        await device.open()
        backlog = [b"%d" % i for i in range(50)]
        for payload in backlog:  # the forwarder is stopped: the broker queues these for it
            await device.publish("plant/press-1/telemetry", payload, 1)
        forwarder = await _start(a.settings.port, b.settings.port, *session)
        assert await seen.until(len(backlog)) == backlog
    finally:
        await device.close()
        await cloud.close()
        if forwarder is not None:
            assert await _stop(forwarder) == 0
