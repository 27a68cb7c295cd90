"""The publisher against a real Mosquitto: exact delivery at QoS 1, rate, credentials, the CLI."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.commands.simulate import register
from simulators.fleet import build_fleet
from simulators.link import Link, LinkError
from simulators.publisher import Credentials, PublishCounts, Publisher
from tests.simulators.conftest import Broker

ROOT = Path(__file__).resolve().parents[2]


class Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= n, timeout)


def _subscriber(broker: Broker, topic_filter: str, collector: Collector) -> Link:
    link = Link(host=broker.host, port=broker.port, client_id="test-sub", on_message=collector)
    link.connect()
    link.subscribe(topic_filter, 1)
    return link


def test_publisher_delivers_exactly_n_messages_at_qos1(broker: Broker) -> None:
    fleet = build_fleet("owntracks", 3, seed=7)
    collector = Collector()
    sub = _subscriber(broker, "owntracks/#", collector)
    try:
        counts = Publisher(fleet, host=broker.host, port=broker.port, rate=50, qos=1, count=4).run()
        assert collector.wait_for(12)
        time.sleep(0.3)  # nothing more may follow
    finally:
        sub.close()
    assert counts == PublishCounts(published=12, acked=12, failed=0)
    assert len(collector.messages) == 12
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
    worker.start()
    while not publisher.counts.published:  # connected and started
        time.sleep(0.005)
    time.sleep(1.0)
    publisher.stop()
    worker.join(timeout=15)
    assert not worker.is_alive()
    (counts,) = result
    # 4 devices x 20 msg/s = 80 msg/s offered; generous bounds, this is not a benchmark.
    assert 55 <= counts.published <= 110, counts
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
    from tests.simulators.conftest import _free_port

    port = _free_port()
    with pytest.raises(LinkError, match=f"127.0.0.1:{port}"):
        Publisher(build_fleet("owntracks", 1, 1), port=port, count=1).run()


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        Publisher([], rate=0)
    with pytest.raises(ValueError, match="qos"):
        Publisher([], qos=2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="einblick")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_simulate_publishes_and_prints_counts(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        [
            "simulate",
            "--profile",
            "shelly_gen2",
            "--devices",
            "2",
            "--rate",
            "20",
            "--count",
            "3",
            "--host",
            broker.host,
            "--port",
            str(broker.port),
            "--seed",
            "3",
            "--qos",
            "1",
        ]
    )
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "published=6 acked=6 failed=0"
    assert "2 shelly_gen2 device(s)" in err


def test_cli_rejects_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulate", "--profile", "nope"])
    assert "owntracks" in capsys.readouterr().err


_CLI = """
import argparse, sys
from gateway.commands.simulate import register
parser = argparse.ArgumentParser(prog="einblick")
register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_ctrl_c_stops_cleanly_and_prints_the_counts(broker: Broker) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CLI,
            "simulate",
            "--profile",
            "owntracks",
            "--devices",
            "3",
            "--rate",
            "10",
            "--port",
            str(broker.port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stderr is not None
        assert "Ctrl-C stops" in proc.stderr.readline()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    fields = dict(part.split("=") for part in out.split())
    assert int(fields["published"]) >= 10
    assert fields["acked"] == fields["published"] and fields["failed"] == "0"
