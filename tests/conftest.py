"""Fixtures shared by every test: real Mosquitto brokers on loopback, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.devices.broker import Mosquitto, free_port
from gateway.devices.broker_files import AclRule, MosquittoSettings

BrokerFactory = Callable[..., Awaitable[Mosquitto]]


@pytest.fixture
async def brokers(tmp_path: Path) -> AsyncIterator[BrokerFactory]:
    """Start real Mosquitto processes on free loopback ports; all are stopped at teardown."""
    started: list[Mosquitto] = []

    async def start(
        name: str = "broker", *, anonymous: bool = True, rules: list[AclRule] | None = None
    ) -> Mosquitto:
        broker = Mosquitto(
            MosquittoSettings(directory=tmp_path / name, port=free_port(), anonymous=anonymous)
        )
        broker.write_files(rules or [])
        await broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        await broker.stop()
