"""``einblick bench`` (gateway/bench/pipeline.py) in miniature: one rate through the real gateway
(its own brokers, its database, load processes, a probe on the cloud side) loses nothing,
duplicates nothing and prints its row, the gateway's own stage figures and the sizing; and a
stage's figures are shown only when every sample in its window came from this rate's run."""

from __future__ import annotations

import re

import pytest

from gateway.bench.pipeline import _stages, _windows, main
from gateway.operations.status_model import LatencySummary


def _window(count: int, p50: float | None = 1.0) -> LatencySummary:
    p99 = None if p50 is None else 9.0
    return LatencySummary(count=count, window=100, p50_ms=p50, p99_ms=p99, max_ms=p99)


def test_a_stage_is_shown_only_from_samples_of_this_run() -> None:
    before = {"received → committed": _window(1000), "outbox → acknowledged": _window(50)}
    after = {
        "received → committed": _window(1050),  # 50 new of a window of 100: mixed with before
        "outbox → acknowledged": _window(400),  # 350 new: the whole window is this run's
        "new stage": _window(100),  # nothing before: all 100 are this run's
        "no figures": _window(500, p50=None),
    }
    assert _stages(before, after) == {
        "outbox → acknowledged": (1.0, 9.0),
        "new stage": (1.0, 9.0),
    }


def test_the_stage_windows_are_read_from_the_typed_status() -> None:
    reply = {
        "instance": "edge-01",
        "started_at": 0.0,
        "key_fingerprint": "ed25519:0000",
        "device_broker": {"connected": True},
        "pipeline": {"latency": _window(10).model_dump()},
        "upstreams": [
            {
                "recipient": recipient,
                "display_name": recipient,
                "connected": True,
                "since": None,
                "last_error": None,
                "sent": 0,
                "withheld_at_send": 0,
                "in_flight": 0,
                "backlog": 0,
                "outbox_depth": 0,
                "latency": _window(count).model_dump(),
            }
            for recipient, count in (("cloud", 20), ("other", 1))
        ],
    }
    assert _windows(reply) == {  # as the control socket sends it
        "received → committed": _window(10),
        "outbox → acknowledged": _window(20),  # the benchmark's recipient, not another
    }


def test_one_rate_through_the_gateway_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rates", "50", "--duration", "1", "--systems", "einblick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    row = re.search(r"^einblick\s+50\s+(\S+)\s+(\S+)\s+(\S+)\s", out, re.MULTILINE)
    assert row is not None, out
    delivered, lost, duplicates = row.groups()
    assert float(delivered.replace(",", "")) > 0
    assert (lost, duplicates) == ("0", "0")
    assert "Sizing: Einblick's CPU per message" in out
    idle = re.search(r"^  Idle \(no messages\): (\S+)% of a core here", out, re.MULTILINE)
    assert idle is not None and 0 < float(idle.group(1)) < 50, out  # measured, not made up


def test_an_unknown_system_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--rates", "50", "--systems", "einblick,einblik"])
    err = capsys.readouterr().err
    assert "unknown system einblik" in err and "einblick-unpaced" in err
    assert "einblick-wakeN (N ms, 1-50)" in err


@pytest.mark.parametrize(
    "name",
    ["einblick-wake51", "einblick-wake", "einblick-wake-1", "einblick-wake0", "einblick-wake05"],
)
def test_a_wake_interval_the_gateway_would_refuse_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    with pytest.raises(SystemExit):
        main(["--rates", "50", "--systems", f"forwarder,{name}"])
    assert f"unknown system {name}:" in capsys.readouterr().err
