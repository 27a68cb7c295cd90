"""The publisher against a real Mosquitto: exact delivery at QoS 1, rate, credentials (its
command, ``einblick simulate``, is tests/gateway/commands/test_simulate.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.devices.ports import free_port
from simulators.fleet import build_fleet
from simulators.link import Link, LinkError
from simulators.publisher import Credentials, PublishCounts, Publisher
from tests.simulators.conftest import Broker, Collector

ROOT = Path(__file__).resolve().parents[2]


def _subscriber(broker: Broker, topic_filter: str, collector: Collector) -> Link:
    link = Link(host=broker.host, port=broker.port, client_id="test-sub", on_message=collector)
    link.connect()
    link.subscribe(topic_filter, 1)
    return link


def _fence(broker: Broker, topic: str, collector: Collector, n: int) -> None:
    """Publish a last message from another client and wait until it is the ``n``-th received.

    run() returned with every message acked, and Mosquitto routes a QoS 1 message to its
    subscribers before it sends the PUBACK, so all of them are queued for the subscriber ahead of
    the fence: anything extra would arrive before it."""
    link = Link(host=broker.host, port=broker.port, client_id="test-fence")
    link.connect()
    try:
        link.publish(topic, b"fence", 1)
        assert collector.wait_for(n), f"the fence did not arrive: {collector.messages}"
    finally:
        link.close()


def test_publisher_delivers_exactly_n_messages_at_qos1(broker: Broker) -> None:
    fleet = build_fleet("owntracks", 3, seed=7)
    collector = Collector()
    sub = _subscriber(broker, "owntracks/#", collector)
    try:
        counts = Publisher(fleet, host=broker.host, port=broker.port, rate=50, qos=1, count=4).run()
        assert collector.wait_for(12)
        _fence(broker, "owntracks/fence", collector, 13)
    finally:
        sub.close()
    assert counts == PublishCounts(published=12, acked=12, failed=0)
    assert collector.messages[-1] == ("owntracks/fence", b"fence")
    del collector.messages[-1]
    assert len(collector.messages) == 12  # nothing more followed before the fence
    per_topic = {t: sum(1 for m in collector.messages if m[0] == t) for t, _ in collector.messages}
    assert per_topic == {d.topic: 4 for d in fleet}


def test_duration_bounds_the_schedule(broker: Broker) -> None:
    fleet = build_fleet("zigbee2mqtt", 2, seed=1)
    began = time.monotonic()
    counts = Publisher(fleet, host=broker.host, port=broker.port, rate=10, duration=1.0).run()
    elapsed = time.monotonic() - began
    # Device 0 is due at 0.0, 0.1 ... 0.9 s, device 1 at 0.05 ... 0.95 s.
    assert counts == PublishCounts(published=20, acked=20, failed=0)
    assert elapsed >= 0.9


def test_rate_is_respected_until_stopped(broker: Broker) -> None:
    fleet = build_fleet("tasmota", 4, seed=1)
    publisher = Publisher(fleet, host=broker.host, port=broker.port, rate=20, qos=0)
    result: list[PublishCounts] = []
    worker = threading.Thread(target=lambda: result.append(publisher.run()), name="publisher")
    began = time.monotonic()
    worker.start()
    # Wait for the event (80 messages out), not for a time: under load the schedule only
    # falls behind, never ahead, so the bound below holds however slow the machine is.
    deadline = began + 15
    while publisher.counts.published < 80:
        assert time.monotonic() < deadline, f"the publisher stalled: {publisher.counts}"
        time.sleep(0.005)
    publisher.stop()
    worker.join(timeout=15)
    assert not worker.is_alive()
    elapsed = time.monotonic() - began
    (counts,) = result
    # 4 devices x 20 msg/s: by any moment t after the start at most 4 + 80 t are due.
    assert 80 <= counts.published <= 4 + 80 * elapsed, (counts, elapsed)
    assert counts.failed == 0


def test_credentials_are_used_and_a_wrong_password_is_refused(
    password_broker: tuple[Broker, str, str],
) -> None:
    broker, user, password = password_broker
    fleet = build_fleet("ble_presence", 2, seed=1)
    ok = Publisher(
        fleet,
        host=broker.host,
        port=broker.port,
        count=2,
        rate=20,
        credentials=lambda i, d: Credentials(user, password),
    ).run()
    assert ok == PublishCounts(4, 4, 0)
    wrong = Publisher(
        fleet,
        host=broker.host,
        port=broker.port,
        count=2,
        rate=20,
        credentials=lambda i, d: Credentials(user, "falsch"),
    )
    with pytest.raises(LinkError, match="refused") as info:
        wrong.run()
    assert info.value.port == broker.port


def test_an_unreachable_broker_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(LinkError, match=f"127.0.0.1:{port}"):
        Publisher(build_fleet("owntracks", 1, 1), port=port, count=1).run()


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        Publisher([], rate=0)
    with pytest.raises(ValueError, match="qos"):
        Publisher([], qos=2)
