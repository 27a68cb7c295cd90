"""The load generator and the latency probe against a real Mosquitto."""

from __future__ import annotations

import json

from simulators.link import Link
from simulators.load import LatencyProbe, _percentile, build_load, run_load
from tests.simulators.conftest import Broker


def test_load_messages_carry_seq_and_send_time_and_are_about_200_bytes() -> None:
    (device,) = build_load(1, prefix="bench/x")
    topics_bodies = [device.next_message(1_700_000_000.5 + k) for k in range(3)]
    for k, (topic, raw) in enumerate(topics_bodies):
        body = json.loads(raw)
        assert topic == "bench/x/load-0000"
        assert body["seq"] == k and body["dev"] == "load-0000"
        assert body["sent_ns"] == 1_700_000_000_500_000_000 + k * 1_000_000_000
        assert 195 <= len(raw) <= 210
    assert device.sent == 3


def test_run_load_measures_no_loss_and_a_sane_latency(broker: Broker) -> None:
    counts, report = run_load(host=broker.host, port=broker.port, rate=200, devices=4, duration=1.0)
    assert counts.published == 200 and counts.failed == 0
    assert report.unique == counts.published
    assert report.lost == 0 and report.duplicates == 0
    assert 0 < report.p50_ms <= report.p99_ms <= report.max_ms < 2_000


def test_probe_reports_lost_and_duplicated_messages(broker: Broker) -> None:
    pub = Link(host=broker.host, port=broker.port, client_id="gappy")
    with LatencyProbe(host=broker.host, port=broker.port, topic_filter="gap/#") as probe:
        pub.connect()
        try:
            for seq in (0, 1, 1, 3):  # seq 2 lost, seq 1 twice
                body = {"dev": "d1", "seq": seq, "sent_ns": 0}
                assert pub.publish("gap/d1", json.dumps(body).encode(), 1)
            pub.publish("gap/d1", b"not json", 1)
            assert probe.wait_for(3, timeout=10)
            while probe.malformed < 1:
                probe.wait_for(4, timeout=0.05)
        finally:
            pub.close()
        report = probe.report({"d1": 4})
    assert (report.received, report.unique, report.lost, report.duplicates) == (4, 3, 1, 1)
    assert probe.malformed == 1


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 50) == 50.0
    assert _percentile(values, 99) == 99.0
    assert _percentile([], 99) == 0.0
    assert _percentile([7.0], 50) == 7.0
