"""Running an erasure: retained messages cleared on a real broker, the subject's topic filters,
and the refusals an installer sees before anything is erased."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights.erasure import ErasureError
from gateway.rights.forgetting import _device_filters, clear_retained, forget_offline
from policies.compiler import compile_policy
from policies.engine import Engine
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.loader import load_policy
from tests.conftest import BrokerFactory
from tests.policies.conftest import Keys


def _endpoint(port: int, client: str) -> Endpoint:
    return Endpoint("127.0.0.1", port, client)


async def test_retained_messages_under_the_filters_are_cleared(brokers: BrokerFactory) -> None:
    broker = await brokers()
    port = broker.settings.port
    device = MqttConnection(_endpoint(port, "oven"))
    await device.open()
    await device.publish("bakery/oven-1/status", b"Online", 1, retain=True)
    await device.publish("bakery/oven-1/serial", b"OV-1", 1, retain=True)
    await device.publish("bakery/oven-2/status", b"Online", 1, retain=True)
    await device.close()
    assert await clear_retained(_endpoint(port, "clear"), ["bakery/oven-1/#"], settle=0.5) == 2
    got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=10)
    watcher = MqttConnection(_endpoint(port, "watch"), on_message=got.put_nowait)
    await watcher.open()
    await watcher.subscribe("bakery/#", 1)
    # Retained messages arrive on subscribing, before anything published after it: the fence.
    await watcher.publish("bakery/oven-1/fence", b"fence", 1)
    seen = [await asyncio.wait_for(got.get(), 5)]
    while seen[-1].payload != b"fence":
        seen.append(await asyncio.wait_for(got.get(), 5))
    await watcher.close()
    assert [(m.topic, m.payload) for m in seen] == [
        ("bakery/oven-2/status", b"Online"),  # another device's: kept
        ("bakery/oven-1/fence", b"fence"),
    ]


async def test_no_filters_touch_nothing() -> None:
    # No connection is even attempted: port 1 has nothing listening.
    assert await clear_retained(_endpoint(1, "none"), []) == 0


def test_filters_cover_the_subjects_devices_only() -> None:
    engine = Engine(
        [compile_policy(load_policy(example_path(n)), RECIPIENTS) for n in EXAMPLES], Keys()
    )
    customer = next(p.customer for p in engine.policies() if p.device("oven-1") is not None)
    one = _device_filters(engine, [], customer, "oven-1")
    assert one == ["bakery/oven-1/telemetry", "bakery/oven-1/status"]
    everything = _device_filters(engine, [], customer, None)
    assert set(one) < set(everything) and "bakery/back-door/#" in everything
    assert _device_filters(engine, [], customer, "no-such-device") == []


def test_offline_forget_refuses_before_touching_anything(tmp_path: Path) -> None:
    init_directory(InitOptions(directory=tmp_path))
    config = load_config(tmp_path / "einblick.yaml")
    with pytest.raises(ErasureError, match="--by"):
        forget_offline(config, "acme", None, "  ", known_recipients=[])
    with pytest.raises(ErasureError, match="no database"):
        forget_offline(config, "acme", None, "Anna", known_recipients=[])
    assert not config.database_path.exists()
