"""The benchmark's raw-socket load generator against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.bench.load import Generator, NullSubscriber, ceiling, publish_packet
from simulators.load import LatencyProbe
from tests.conftest import BrokerFactory


def test_publish_packet_is_mqtt_311_qos1_framing() -> None:
    # 0x32 PUBLISH QoS 1; remaining length 2+1 (topic) + 2 (id) + 200 = 205 → two-byte varint.
    packet = publish_packet(b"t", 7, b"x" * 200)
    assert packet[:3] == bytes([0x32, 205 & 0x7F | 0x80, 205 >> 7])
    assert packet[3:8] == b"\x00\x01t\x00\x07"
    assert len(packet) == 3 + 205


async def test_paced_generator_delivers_every_message_in_the_load_format(
    brokers: BrokerFactory,
) -> None:
    broker = await brokers()
    with LatencyProbe(host="127.0.0.1", port=broker.settings.port, topic_filter="g/#") as probe:
        generator = Generator(broker.settings.port, 400.0, 1.0, 4, "g", processes=2)
        result = await asyncio.to_thread(generator.run)
        assert await asyncio.to_thread(probe.wait_for, result.published, 10.0)
        report = probe.report(result.sent)
    assert set(result.sent) == {"load-0000", "load-0001", "load-0002", "load-0003"}
    # Paced: 400/s for 1 s, within a tick's worth either side.
    assert 380 <= result.published <= 404
    assert result.acked == result.published
    assert report.lost == 0 and report.duplicates == 0 and probe.malformed == 0
    assert 0 < report.p50_ms <= report.p99_ms < 2_000


async def test_unpaced_generator_outruns_the_python_publisher(tmp_path: Path) -> None:
    # The paho publisher topped out at ~2,200-3,000 msg/s on this machine; the raw generator's
    # ceiling into a bare broker must be far above that for a max row to mean anything.
    top = await ceiling(tmp_path, 1.0, 10, 2)
    assert top.acked == top.published
    assert top.offered_rate > 6_000


async def test_null_subscriber_receives(brokers: BrokerFactory) -> None:
    broker = await brokers()
    subscriber = NullSubscriber(broker.settings.port)
    try:
        generator = Generator(broker.settings.port, 0.0, 0.3, 1, "n", processes=1)
        result = await asyncio.to_thread(generator.run)
        expected = result.published * len(json.dumps({"x": 1}))  # at least some bytes each
        for _ in range(100):
            if subscriber.received_bytes >= expected:
                break
            await asyncio.sleep(0.05)
        assert subscriber.received_bytes >= expected
    finally:
        subscriber.close()
