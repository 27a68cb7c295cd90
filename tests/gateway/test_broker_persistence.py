"""A Mosquitto killed with -9 must come back knowing the gateway's subscription, or what devices
publish before the gateway has subscribed again is acknowledged to them and dropped."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection


def _saved_at(broker: Mosquitto) -> int | None:
    try:
        return (broker.settings.directory / "persistence" / "mosquitto.db").stat().st_mtime_ns
    except FileNotFoundError:
        return None


async def _kill_and_restart(broker: Mosquitto) -> None:
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert broker.process is not None
    await broker.process.wait()
    await broker.start()


async def _survives_kill(tmp_path: Path, *, save: bool) -> bool:
    # Autosave far away (the later line wins): only an explicit save can write the subscription.
    settings = MosquittoSettings(
        directory=tmp_path, port=free_port(), anonymous=True, extra=("autosave_interval 3600",)
    )
    broker = Mosquitto(settings)
    broker.write_files([])
    await broker.start()
    try:
        gateway = MqttConnection(
            Endpoint("127.0.0.1", settings.port, "gw"), clean_session=False, manual_ack=True
        )
        await gateway.open()
        await gateway.subscribe("d/#", 1)
        await gateway.close()
        if save:
            before = _saved_at(broker)
            broker.save()
            async with asyncio.timeout(10):
                while _saved_at(broker) == before:
                    await asyncio.sleep(0.02)
        await _kill_and_restart(broker)
        device = MqttConnection(Endpoint("127.0.0.1", settings.port, "dev"))
        await device.open()
        await device.publish("d/x", b"42", 1)  # acknowledged by the broker either way
        await device.close()
        got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=10)
        again = MqttConnection(
            Endpoint("127.0.0.1", settings.port, "gw"),
            on_message=got.put_nowait,
            clean_session=False,
            manual_ack=True,
        )
        await again.open()
        try:
            # The fence: subscribed again (a broker that forgot the session forgot its
            # subscription too), a message published now arrives after anything the broker
            # kept queued for the session, so "not before the fence" means dropped, however
            # slow the machine is.
            await again.subscribe("d/#", 1)
            fence = MqttConnection(Endpoint("127.0.0.1", settings.port, "fence"))
            await fence.open()
            await fence.publish("d/x", b"fence", 1)
            await fence.close()
            before_fence = []
            async with asyncio.timeout(10):
                while (message := await got.get()).payload != b"fence":
                    before_fence.append(message.payload)
        finally:
            await again.close()
        return before_fence == [b"42"]
    finally:
        await broker.stop()


async def test_after_save_a_killed_broker_still_queues_for_the_gateway(tmp_path: Path) -> None:
    assert await _survives_kill(tmp_path / "saved", save=True)


async def test_without_save_the_same_kill_drops_the_message(tmp_path: Path) -> None:
    """The control: shows the test above would notice if ``save`` did nothing."""
    assert not await _survives_kill(tmp_path / "unsaved", save=False)
