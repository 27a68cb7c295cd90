"""A whole gateway on loopback for end-to-end tests: managed Mosquitto, a cloud broker standing
in for every recipient, registered devices, and the Gateway running in this test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.app import Gateway
from gateway.config import load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.devices.registry import Registry
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.scaffold import InitOptions, init_directory

__all__ = ["Cloud", "Harness", "running_gateway"]


@dataclass
class Cloud:
    """The recipients' broker and a subscriber recording everything that arrives there."""

    broker: Mosquitto
    received: list[Inbound] = field(default_factory=list)
    connection: MqttConnection | None = None

    async def listen(self) -> None:
        # A persistent session: across a restart of the cloud broker, what the gateway forwards
        # before the spy is back waits for it instead of going to nobody.
        self.connection = MqttConnection(
            Endpoint("127.0.0.1", self.broker.settings.port, "cloud-spy"),
            on_message=self.received.append,
            clean_session=False,
        )
        await self.connection.open()
        await self.connection.subscribe("#", 1)

    def payloads(self, topic_prefix: str = "") -> list[dict[str, object]]:
        return [orjson.loads(m.payload) for m in self.received if m.topic.startswith(topic_prefix)]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.02)


@dataclass
class Harness:
    directory: Path
    gateway: Gateway
    cloud: Cloud
    passwords: dict[tuple[str, str], str]
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return self.gateway.config.broker.port

    async def device(self, customer: str, device: str) -> MqttConnection:
        username = f"{customer}.{device}"
        conn = MqttConnection(
            Endpoint(
                "127.0.0.1",
                self.port,
                username,
                username=username,
                password=self.passwords[(customer, device)],
            )
        )
        await conn.open()
        return conn

    async def wait_committed(self, count: int, timeout: float = 10.0) -> None:
        assert self.gateway.pipeline is not None
        async with asyncio.timeout(timeout):
            while self.gateway.pipeline.stats.committed < count:
                await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    policies: dict[str, str],
    devices: list[tuple[str, str, str]],
    *,
    config_edits: dict[str, str] | None = None,
) -> AsyncIterator[Harness]:
    """Start a gateway whose policies directory holds exactly ``policies`` (file name -> YAML)."""
    cloud_broker = Mosquitto(
        MosquittoSettings(directory=tmp_path / "cloud", port=free_port(), anonymous=True)
    )
    cloud_broker.write_files([])
    await cloud_broker.start()
    cloud = Cloud(cloud_broker)
    try:
        async with _gateway(tmp_path, cloud, policies, devices, config_edits) as harness:
            yield harness
    finally:
        if cloud.connection is not None:
            await cloud.connection.close()
        await cloud_broker.stop()


@contextlib.asynccontextmanager
async def _gateway(
    tmp_path: Path,
    cloud: Cloud,
    policies: dict[str, str],
    devices: list[tuple[str, str, str]],
    config_edits: dict[str, str] | None,
) -> AsyncIterator[Harness]:
    cloud_broker = cloud.broker
    directory = tmp_path / "edge"
    config_path = init_directory(
        InitOptions(
            directory=directory,
            broker_port=free_port(),
            upstream_url=f"mqtt://127.0.0.1:{cloud_broker.settings.port}",
            checkpoint_interval_s=0.2,
        )
    )
    for old in (directory / "policies").glob("*.yaml"):
        old.unlink()
    for name, text in policies.items():
        (directory / "policies" / name).write_text(text, encoding="utf-8")
    for old_text, new_text in (config_edits or {}).items():
        text = config_path.read_text(encoding="utf-8")
        assert old_text in text, f"{old_text!r} is not in the generated configuration"
        config_path.write_text(text.replace(old_text, new_text), encoding="utf-8")
    config = load_config(config_path)
    registry = Registry(config.data_path / "devices.json")
    passwords: dict[tuple[str, str], str] = {}
    for customer, device, name in devices:
        _, password = registry.add(customer, device, name=name, kind="sensor")
        assert password is not None
        passwords[(customer, device)] = password
    registry.save()
    gateway = Gateway(config)
    task = asyncio.get_running_loop().create_task(gateway.run(), name="gateway-under-test")
    try:
        async with asyncio.timeout(15):
            ready = asyncio.get_running_loop().create_task(gateway.ready.wait(), name="ready")
            done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                ready.cancel()
                task.result()  # raises the start-up error
            while not gateway.device_state.connected or not all(
                f.state.connected for f in gateway.forwarders.values()
            ):
                await asyncio.sleep(0.02)
        await cloud.listen()
        yield Harness(directory, gateway, cloud, passwords, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
