"""The hold session: once opened, the broker keeps the customer's messages for it while nobody
is connected; ending it discards the session; its record beside the database survives a restart
and a damaged one is refused with what to do; whether the broker still keeps it is asked of the
broker, and asking leaves nothing behind (a real Mosquitto on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.holds import (
    HoldError,
    end_session,
    hold_endpoint,
    hold_path,
    open_hold,
    read_hold,
    still_held,
)
from tests.conftest import BrokerFactory

FILTERS = ["devices/werk-a/#", "werk-a/press-1/telemetry"]


async def publish(port: int, topic: str, payload: bytes) -> None:
    device = MqttConnection(Endpoint("127.0.0.1", port, "press-1"))
    await device.open()
    try:
        await device.publish(topic, payload, 1)
    finally:
        await device.close()


async def drain(endpoint: Endpoint, until: bytes) -> list[bytes]:
    """Connect the hold's session and take what it queued, up to the payload ``until``."""
    got: list[bytes] = []
    done = asyncio.Event()

    def receive(message: Inbound) -> None:
        got.append(message.payload)
        message.ack()
        if message.payload == until:
            done.set()

    link = MqttConnection(endpoint, on_message=receive, manual_ack=True, clean_session=False)
    await link.open()
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        await link.close()
    return got


async def test_the_broker_keeps_the_customers_messages_for_a_disconnected_hold(
    brokers: BrokerFactory, tmp_path: Path
) -> None:
    broker = await brokers()
    gateway = Endpoint("127.0.0.1", broker.settings.port, "einblick-site-hall-b")
    hold = await open_hold(tmp_path, gateway, "werk-a", FILTERS)
    assert hold.client_id == "einblick-site-hall-b-hold-werk-a"
    assert read_hold(tmp_path, "werk-a") == hold
    # nobody connected: the broker queues for the hold
    await publish(broker.settings.port, "werk-a/press-1/telemetry", b"1")
    await publish(broker.settings.port, "werk-b/press-1/telemetry", b"other customer")
    await publish(broker.settings.port, "devices/werk-a/press-1/x", b"2")
    assert await drain(hold_endpoint(gateway, "werk-a"), until=b"2") == [b"1", b"2"]
    # opened again (a re-run): the same hold, its filters and its start kept
    again = await open_hold(tmp_path, gateway, "werk-a", [])
    assert again == hold


async def test_an_ended_hold_keeps_nothing_more(brokers: BrokerFactory, tmp_path: Path) -> None:
    broker = await brokers()
    gateway = Endpoint("127.0.0.1", broker.settings.port, "einblick-site-hall-b")
    await open_hold(tmp_path, gateway, "werk-a", FILTERS)
    await publish(broker.settings.port, "werk-a/press-1/telemetry", b"before the end")
    await end_session(tmp_path, gateway, "werk-a")
    assert read_hold(tmp_path, "werk-a") is None
    await publish(broker.settings.port, "werk-a/press-1/telemetry", b"after the end")
    # a new session under the hold's client id: neither message was kept for it (a message
    # it queued would come before the fence, the broker delivering in order)
    got: list[bytes] = []
    fenced = asyncio.Event()

    def receive(message: Inbound) -> None:
        got.append(message.payload)
        if message.topic == "fence/werk-a":
            fenced.set()

    link = MqttConnection(hold_endpoint(gateway, "werk-a"), on_message=receive, clean_session=False)
    await link.open()
    try:
        assert not link.session_present
        await link.subscribe("fence/werk-a", 1)
        await link.publish("fence/werk-a", b"fence", 1)
        async with asyncio.timeout(10):
            await fenced.wait()
    finally:
        await link.close()
    assert got == [b"fence"]
    await end_session(tmp_path, gateway, "werk-a")


async def test_a_hold_without_filters_is_refused(brokers: BrokerFactory, tmp_path: Path) -> None:
    broker = await brokers()
    gateway = Endpoint("127.0.0.1", broker.settings.port, "einblick-site-hall-b")
    with pytest.raises(HoldError, match="no filters to hold 'werk-a' under"):
        await open_hold(tmp_path, gateway, "werk-a", [])


def test_a_damaged_record_is_refused_with_what_to_do(tmp_path: Path) -> None:
    hold_path(tmp_path, "werk-a").write_text("{not json", encoding="utf-8")
    with pytest.raises(HoldError, match=r"cannot be read .* client id '…-hold-werk-a'"):
        read_hold(tmp_path, "werk-a")


async def test_whether_a_hold_is_still_kept_is_asked_of_the_broker(
    brokers: BrokerFactory, tmp_path: Path
) -> None:
    broker = await brokers()
    gateway = Endpoint("127.0.0.1", broker.settings.port, "einblick-site-hall-b")
    await open_hold(tmp_path, gateway, "werk-a", FILTERS)
    await publish(broker.settings.port, "werk-a/press-1/telemetry", b"kept")
    assert await still_held(gateway, "werk-a")
    # asking took nothing away: the message is still queued for the hold
    assert await drain(hold_endpoint(gateway, "werk-a"), until=b"kept") == [b"kept"]
    await end_session(tmp_path, gateway, "werk-a")
    assert not await still_held(gateway, "werk-a")
    # and asking made no session of its own: the broker still has none
    assert not await still_held(gateway, "werk-a")


async def test_a_hold_run_again_also_holds_the_filters_sent_now(
    brokers: BrokerFactory, tmp_path: Path
) -> None:
    broker = await brokers()
    gateway = Endpoint("127.0.0.1", broker.settings.port, "einblick-site-hall-b")
    first = await open_hold(tmp_path, gateway, "werk-a", FILTERS[:1])
    # a device registered since, with a topic of its own: the old instance now names it too,
    # and gives it up with the others at the release
    again = await open_hold(tmp_path, gateway, "werk-a", FILTERS)
    assert again.filters == sorted(FILTERS)
    assert again.since == first.since  # held since the first SUBACK, as before
    assert read_hold(tmp_path, "werk-a") == again
    await publish(broker.settings.port, "werk-a/press-1/telemetry", b"new device")
    assert await drain(hold_endpoint(gateway, "werk-a"), until=b"new device") == [b"new device"]
    await end_session(tmp_path, gateway, "werk-a")
