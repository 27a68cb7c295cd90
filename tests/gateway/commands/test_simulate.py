"""``einblick simulate`` (gateway/commands/simulate.py) against a real Mosquitto: it publishes
the fleet it was asked for and prints the counts on stdout, refuses a wrong profile, count or
rate with the reason, and stops cleanly on Ctrl-C with the counts so far."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.commands.simulate import register
from simulators.link import Link
from tests.conftest import BrokerFactory
from tests.simulators.conftest import Broker, Collector

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def broker(brokers: BrokerFactory) -> Broker:
    """A real Mosquitto on loopback (the suite's ``brokers``), as the simulators' tests see it."""
    started = await brokers()
    return Broker("127.0.0.1", started.settings.port)


def _subscriber(broker: Broker, topic_filter: str, collector: Collector) -> Link:
    link = Link(host=broker.host, port=broker.port, client_id="test-sub", on_message=collector)
    link.connect()
    link.subscribe(topic_filter, 1)
    return link


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
    collector = Collector()
    sub = _subscriber(broker, "owntracks/#", collector)
    try:
        assert proc.stderr is not None
        assert "Ctrl-C stops" in proc.stderr.readline()
        # Stop once ten messages have reached the broker (an event, not a guess at a time).
        assert collector.wait_for(10), f"only {len(collector.messages)} messages arrived"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        sub.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    fields = dict(part.split("=") for part in out.split())
    assert int(fields["published"]) >= 10
    assert fields["acked"] == fields["published"] and fields["failed"] == "0"


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [("--devices", "0", "--devices must be at least 1"), ("--rate", "0", "--rate must be")],
)
def test_a_count_or_rate_that_cannot_run_is_refused(
    option: str, value: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["simulate", "--profile", "owntracks", option, value])
    assert args.func(args) == 2
    assert reason in capsys.readouterr().err
