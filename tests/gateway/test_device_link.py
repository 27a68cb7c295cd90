"""The gateway's one session on the device broker (gateway/messages/device_link.py), against a
real Mosquitto: messages reach the pipeline unacknowledged until it says so, replays it must not
decide are acknowledged and dropped, a full outbox closes the session (the broker keeps what
devices send meanwhile) and room opens it again."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.messages.device_link import DeviceLink, offline_seconds
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.mqtt import MqttConnection
from gateway.messages.outbox import Outbox
from gateway.messages.quota import RecipientQueues
from gateway.messages.store import Store
from tests.conftest import BrokerFactory

RECIPIENT = "cloud"


class Pipeline:
    """What the link hands messages to: a queue, acknowledged when the test says."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[Inbound] = asyncio.Queue()

    async def next(self) -> Inbound:
        return await asyncio.wait_for(self.got.get(), 10)


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    queues = RecipientQueues(
        {RECIPIENT: "withhold"},
        max_rows_total=2,
        max_rows=100,
        max_bytes=1 << 20,
        disk_share=0.5,
        disk=tmp_path,
    )
    # The room signal needs no open database: it counts what the pipeline tells it.
    yield Outbox(Store(tmp_path / "einblick.db"), queues, max_rows=2)


async def _device(port: int) -> MqttConnection:
    device = MqttConnection(Endpoint("127.0.0.1", port, "oven"))
    await device.open()
    return device


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a status condition (the link's own flags), at most 15 s (its backoff caps at 10)."""
    async with asyncio.timeout(15):
        while not condition():
            await asyncio.sleep(0.01)


def _link(port: int, outbox: Outbox, pipeline: Pipeline, opened: list[float]) -> DeviceLink:
    return DeviceLink(
        endpoint=lambda: Endpoint("127.0.0.1", port, "einblick-gateway"),
        outbox=outbox,
        flood=FloodGuard(100.0, 500),
        receive=pipeline.got.put_nowait,
        skip=lambda m: m.topic.startswith("replay/"),
        save=lambda: opened.append(time.monotonic()),
    )


async def test_messages_wait_for_the_pipeline_s_ack_and_replays_are_not_decided(
    brokers: BrokerFactory, outbox: Outbox
) -> None:
    broker = await brokers()
    port = broker.settings.port
    pipeline, opened = Pipeline(), []
    link = _link(port, outbox, pipeline, opened)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(link.run(), name="device-link")
        await _until(lambda: link.connected)
        assert link.state.error is None and len(opened) == 1
        device = await _device(port)
        await device.publish("replay/oven/status", b"old", 1)
        await device.publish("bakery/oven/t", b"1", 1)
        first = await pipeline.next()
        assert (first.topic, first.payload) == ("bakery/oven/t", b"1")  # the replay never came
        # Not acknowledged: the session drops (a full outbox), and the broker gives it again.
        await device.publish("bakery/oven/t", b"2", 1)
        second = await pipeline.next()
        assert second.payload == b"2"
        second.ack()
        outbox.queues.added(RECIPIENT, "bakery", 10)
        outbox.queues.added(RECIPIENT, "bakery", 10)
        outbox.hand_over([])
        await _until(lambda: not link.connected)
        # Stepped back from, not dropped by the broker: message 1, unacknowledged, is the
        # broker's again, and the pipeline will not decide the copy it holds.
        assert first.connection.returned
        assert link.state.error == ("paused: the outbox is full (2 rows, limit outbox.max_rows 2)")
        await device.publish("bakery/oven/t", b"3", 1)  # kept by the broker meanwhile
        assert pipeline.got.empty()
        outbox.done(RECIPIENT, "bakery", 2, 20)
        again = [await pipeline.next(), await pipeline.next()]
        assert sorted(m.payload for m in again) == [b"1", b"3"]  # 1 unacked, 3 kept; 2 not again
        # The session's queued messages come with the CONNACK, before the link calls it open.
        await _until(lambda: link.connected)
        # Saved after the first connect, after stepping back (the broker keeps message 1 for
        # us: a kill -9 now must not lose it) and after the reconnect.
        assert len(opened) == 3
        for message in again:
            message.ack()
        await device.close()
        running.cancel()
    await link.close()


async def test_a_broker_that_is_not_there_is_retried_and_reported(
    brokers: BrokerFactory, outbox: Outbox
) -> None:
    broker = await brokers()
    port = broker.settings.port
    await broker.stop()
    pipeline, opened = Pipeline(), []
    link = _link(port, outbox, pipeline, opened)
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(link.run(), name="device-link")
        await _until(lambda: link.state.error is not None)
        assert not link.connected and opened == []
        await broker.start()
        await _until(lambda: link.connected)
        assert link.state.error is None and len(opened) == 1
        running.cancel()
    await link.close()


def test_offline_seconds_is_the_age_of_the_last_write(tmp_path: Path) -> None:
    database = tmp_path / "einblick.db"
    assert offline_seconds(database) == 0.0  # a new box: nothing queued for it
    database.write_bytes(b"")
    wal = tmp_path / "einblick.db-wal"
    wal.write_bytes(b"")
    now = time.time()
    os.utime(database, (now - 3600, now - 3600))
    os.utime(wal, (now - 60, now - 60))  # the WAL is written after the database file
    assert 59 <= offline_seconds(database) < 70
    os.utime(wal, (now + 60, now + 60))  # a clock set back since: never negative
    assert offline_seconds(database) == 0.0
