"""The device session's subscription set: in a cluster only the instance's customers' topics,
and a filter held from before (a lone gateway's '#', a customer handed away) is taken back at
the next connect, since a persistent session keeps its subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from gateway.config import load_config
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.messages.subscriptions import Subscriptions, elsewhere
from tests.conftest import BrokerFactory
from tests.faults.cluster_site import ClusterSite, stream_body
from tests.faults.site import Spy
from tests.gateway.test_cluster_view import cluster_block, instance

CLIENT = "einblick-site-hall-a"


async def session(port: int, got: list[Inbound], fence: asyncio.Event) -> MqttConnection:
    def receive(message: Inbound) -> None:
        got.append(message)
        if message.topic.endswith("/fence"):
            fence.set()

    link = MqttConnection(
        Endpoint("127.0.0.1", port, CLIENT), on_message=receive, clean_session=False
    )
    await link.open()
    return link


async def test_a_filter_held_from_before_is_taken_back_and_only_owned_topics_arrive(
    brokers: BrokerFactory, tmp_path: Path
) -> None:
    broker = await brokers()
    port = broker.settings.port
    got: list[Inbound] = []
    fence = asyncio.Event()
    # The same client id ran as a lone gateway before: its persistent session holds '#'.
    before = await session(port, got, fence)
    await before.subscribe("#", 1)
    await before.close()

    record = tmp_path / "subscriptions.json"
    subscriptions = Subscriptions(lambda: ["devices/werk-a/#", "werk-a/press-1/+"], record)
    link = await session(port, got, fence)
    await subscriptions.apply(link)
    assert orjson.loads(record.read_bytes()) == ["devices/werk-a/#", "werk-a/press-1/+"]

    device = MqttConnection(Endpoint("127.0.0.1", port, "werk.device"))
    await device.open()
    for topic in ("werk-b/press-1/telemetry", "werk-a/press-1/telemetry", "devices/werk-a/p/fence"):
        await device.publish(topic, b"{}", 1)
    async with asyncio.timeout(10):
        await fence.wait()  # published last: everything before it has been delivered or not
    assert [m.topic for m in got] == ["werk-a/press-1/telemetry", "devices/werk-a/p/fence"]
    await device.close()
    await link.close()


async def test_what_is_no_longer_wanted_is_unsubscribed_and_remembered(
    brokers: BrokerFactory, tmp_path: Path
) -> None:
    broker = await brokers()
    port = broker.settings.port
    got: list[Inbound] = []
    fence = asyncio.Event()
    record = tmp_path / "subscriptions.json"
    wanted = ["devices/werk-a/#", "devices/werk-b/#"]
    subscriptions = Subscriptions(lambda: list(wanted), record)
    link = await session(port, got, fence)
    await subscriptions.apply(link)
    await link.close()
    wanted.remove("devices/werk-b/#")  # werk-b was handed to another instance
    # A new start reads what its session holds from the record, not from memory.
    link = await session(port, got, fence)
    await Subscriptions(lambda: list(wanted), record).apply(link)
    assert orjson.loads(record.read_bytes()) == ["devices/werk-a/#"]
    device = MqttConnection(Endpoint("127.0.0.1", port, "werk.device"))
    await device.open()
    for topic in ("devices/werk-b/p/t", "devices/werk-a/p/fence"):
        await device.publish(topic, b"{}", 1)
    async with asyncio.timeout(10):
        await fence.wait()
    assert [m.topic for m in got] == ["devices/werk-a/p/fence"]
    await device.close()
    await link.close()


async def test_a_record_that_cannot_be_written_does_not_end_the_session(
    brokers: BrokerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk (here: a directory where the record's temporary file would go) made the
    write raise out of the device link and ended the gateway; the subscriptions still hold."""
    broker = await brokers()
    got: list[Inbound] = []
    fence = asyncio.Event()
    record = tmp_path / "subscriptions.json"
    record.with_suffix(".tmp").mkdir()
    subscriptions = Subscriptions(lambda: ["devices/werk-a/#"], record)
    link = await session(broker.settings.port, got, fence)
    with caplog.at_level(logging.WARNING, logger="gateway.messages.subscriptions"):
        await subscriptions.apply(link)
    assert not record.exists()
    assert "cannot record this instance's subscriptions" in caplog.text
    assert str(record) in caplog.text
    device = MqttConnection(Endpoint("127.0.0.1", broker.settings.port, "werk.device"))
    await device.open()
    await device.publish("devices/werk-a/p/fence", b"{}", 1)
    async with asyncio.timeout(10):
        await fence.wait()
    assert [m.topic for m in got] == ["devices/werk-a/p/fence"]
    await device.close()
    await link.close()


def test_another_instances_customers_namespace_is_acknowledged_without_a_trace(
    tmp_path: Path,
) -> None:
    """A first-level wildcard's filter (``+/+/+/x``) also brings werk-b's ``devices/werk-b/…``
    here; werk-b is hall-b's, which has it through its own filter. A name no instance serves is
    decided here, as anywhere (withheld, "unknown device"), never dropped without a trace."""
    block = cluster_block({"hall-a": "werk-a", "hall-b": "werk-b"})
    config = load_config(instance(tmp_path, "hall-a", block))
    assert elsewhere(config, "devices/werk-b/press-1/x", _none)  # listed for hall-b
    assert not elsewhere(config, "devices/werk-a/press-1/x", _none)  # its own
    assert not elsewhere(config, "plant/a/b/x", _none)  # in no namespace: the policies decide
    # A name the hash gives to some instance, which serves it only if it has a policy.
    ghost = next(
        c for c in (f"werk-{i}" for i in range(100)) if not config.owns(c) and c != "werk-b"
    )
    assert not elsewhere(config, f"devices/{ghost}/x", _none)
    assert elsewhere(config, f"devices/{ghost}/x", lambda c: c == ghost)  # its policy there
    config.record_moves(frozenset({"werk-a"}), frozenset())  # werk-a handed over
    assert elsewhere(config, "devices/werk-a/press-1/x", _none)
    lone = load_config(instance(tmp_path, "lone", ""))
    assert not elsewhere(lone, "devices/werk-b/press-1/x", _none)  # no cluster: every customer here


async def test_an_instance_leaves_another_instances_customers_namespace_to_it(
    tmp_path: Path,
) -> None:
    """Two instances behind one broker: werk-a's pattern ``{site}/{line}/press-1/telemetry``
    (hall-a) becomes the filter ``+/+/press-1/telemetry``, which also brings werk-b's
    ``devices/werk-b/press-1/telemetry`` to hall-a. hall-a acknowledges it without a trace;
    hall-b, werk-b's, records it."""
    async with _halls(tmp_path, "{site}/{line}/press-1/telemetry") as (site, spy, device):
        await device.publish("devices/werk-b/press-1/telemetry", stream_body("werk-b", 0), 1)
        # The fence: werk-a's, published after it on the same connection, so hall-a has had
        # werk-b's message by the time this one is forwarded.
        await device.publish("plant/werk-a/press-1/telemetry", stream_body("werk-a", 1), 1)
        await site.wait_until(lambda: len(spy.received) >= 1, 30, "werk-a's release")
        await device.close()
        hall_a = (await site.status("hall-a"))["pipeline"]
        assert hall_a["received"] == 1, hall_a  # the fence only: werk-b's is hall-b's
        await site.wait_until(
            lambda: _received(site, "hall-b"), 30, "hall-b recording werk-b's message"
        )


async def test_a_topic_two_instances_customers_claim_is_decided_by_the_more_literal_ones(
    tmp_path: Path,
) -> None:
    """werk-a's ``{site}/press-1/telemetry`` (hall-a) and werk-b's ``werk-b/press-1/telemetry``
    (hall-b) overlap; on one box the second would be refused, here both run. werk-b's message
    reaches hall-a through its filter ``+/press-1/telemetry``; hall-a records it withheld,
    attributed to no one (the more literal pattern is werk-b's), and hall-b releases it.
    Before, hall-a decided it as werk-a's and released werk-b's data to werk-a's recipient."""
    async with _halls(tmp_path, "{site}/press-1/telemetry") as (site, spy, device):
        await device.publish("werk-b/press-1/telemetry", stream_body("werk-b", 0), 1)
        # The fence on hall-a: werk-a's own, after werk-b's on the same connection, so hall-a
        # has decided werk-b's message (and would have released it first) when this one leaves.
        await device.publish("werk-a/press-1/telemetry", stream_body("werk-a", 1), 1)
        await site.wait_until(lambda: len(spy.received) >= 2, 30, "both releases")
        await device.close()
        hall_a = (await site.status("hall-a"))["pipeline"]
        assert hall_a["received"] == 2, hall_a  # werk-b's recorded here too: not lost anywhere
        assert hall_a["withheld"] == 1 and hall_a["shared"] + hall_a["altered"] == 1, hall_a
        topics = sorted(m.topic for m in spy.received)
        assert topics == ["werk-a/presses/press-1", "werk-b/presses/press-1"], topics


@contextlib.asynccontextmanager
async def _halls(
    tmp_path: Path, werk_a_pattern: str
) -> AsyncIterator[tuple[ClusterSite, Spy, MqttConnection]]:
    """hall-a (werk-a, its press on ``werk_a_pattern``) and hall-b (werk-b) behind one device
    broker, both running; the recipient's spy and a device connection that may publish
    anywhere."""
    listed = {"hall-a": ["werk-a"], "hall-b": ["werk-b"]}
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), ("werk-a", "werk-b"), listed)
    try:
        await site.setup()
        policy = tmp_path / "policies" / "werk-a.yaml"
        text = policy.read_text(encoding="utf-8")
        policy.write_text(
            text.replace('"werk-a/press-1/telemetry"', f'"{werk_a_pattern}"'), encoding="utf-8"
        )
        for name in ("hall-a", "hall-b"):
            await site.start(name)
        assert site.device_broker is not None and site.spy is not None
        device = MqttConnection(Endpoint("127.0.0.1", site.device_broker.settings.port, "dev"))
        await device.open()
        yield site, site.spy, device
    finally:
        await site.teardown()


def _none(_customer: str) -> bool:
    return False  # no policy file set aside for another instance


async def _received(site: ClusterSite, instance: str) -> bool:
    return bool((await site.status(instance))["pipeline"]["received"] >= 1)
