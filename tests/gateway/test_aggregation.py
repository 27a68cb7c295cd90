"""Closing aggregation windows (gateway/messages/aggregation.py) with the real engine and the
example building policy (the floor meter, summarised per quarter hour): nothing is recorded
before a window ends, its summary is recorded once after, at the clock's time, through the
engine in force then; ``run`` closes windows by itself, and a failed record ends it rather than
dropping a summary without its entry."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from gateway.messages.aggregation import WindowCloser
from policies.compiler import compile_policy
from policies.decision import Decision
from policies.engine import Engine
from policies.examples import RECIPIENTS, example_path
from policies.loader import load_policy
from policies.message import Message
from tests.gateway.clocks import SetClock
from tests.gateway.harness import running_gateway
from tests.policies.conftest import make_engine

T0 = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)  # a quarter hour starts


class _Keys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return (customer + recipient).encode().ljust(32, b"k")


def _engine() -> Engine:
    return Engine([compile_policy(load_policy(example_path("building")), RECIPIENTS)], _Keys())


def _meter(engine: Engine, power: int, total: float, at: datetime) -> None:
    body = {"Time": "x", "ENERGY": {"Power": power, "Total": total, "Today": 1.0}}
    out = engine.evaluate(Message("tele/berg-meter/SENSOR", orjson.dumps(body), at), at)
    assert out and all(d.payload is None for d in out)  # nothing leaves before the window ends


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[list[Decision], datetime]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, decisions: Sequence[Decision], now: datetime) -> None:
        self.calls.append((list(decisions), now))
        self.arrived.set()


async def test_a_window_is_recorded_once_after_it_ends_at_the_clocks_time() -> None:
    engine = _engine()
    for minute, power in ((1, 800), (5, 1200), (9, 1000)):
        _meter(engine, power, 7970.0 + minute, T0 + timedelta(minutes=minute))
    now = T0 + timedelta(minutes=14)
    recorded = Recorded()
    closer = WindowCloser(lambda: engine, recorded, SetClock(lambda: now))

    assert await closer.close_due() == 0  # the quarter hour is not over
    assert recorded.calls == []
    now = T0 + timedelta(minutes=15, seconds=1)
    assert await closer.close_due() == 1
    assert await closer.close_due() == 0  # recorded once, never again
    [(decisions, at)] = recorded.calls
    assert at == now and closer.closed == 1
    [summary] = decisions
    assert (summary.customer, summary.device, summary.recipient) == (
        "berg-partner",
        "floor-meter",
        "energy-provider",
    )
    assert summary.grant == "energy-billing" and summary.payload is not None
    assert orjson.loads(summary.payload) == {  # only the aggregated fields leave
        "window": {"start": "2026-06-03T09:00:00Z", "end": "2026-06-03T09:15:00Z"},
        "ENERGY.Power": {"mean": 1000.0, "max": 1200.0},
        "ENERGY.Total": {"max": 7979.0},
    }


async def test_the_engine_in_force_is_asked_each_time() -> None:
    """A reload replaces the engine; the closer must not keep the one it started with."""
    old, new = _engine(), _engine()
    _meter(new, 500, 1.0, T0 + timedelta(minutes=2))
    engines = [old]
    recorded = Recorded()
    closer = WindowCloser(
        lambda: engines[0], recorded, SetClock(lambda: T0 + timedelta(minutes=20))
    )
    assert await closer.close_due() == 0
    engines[0] = new
    assert await closer.close_due() == 1


async def test_run_closes_windows_by_itself() -> None:
    engine = _engine()
    _meter(engine, 900, 2.0, T0 + timedelta(minutes=3))
    recorded = Recorded()
    closer = WindowCloser(
        lambda: engine, recorded, SetClock(lambda: T0 + timedelta(minutes=16)), every_s=0.01
    )
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(closer.run(), name="aggregation-windows")
        async with asyncio.timeout(10):
            await recorded.arrived.wait()
        task.cancel()
    assert len(recorded.calls) == 1 and closer.closed == 1


async def test_a_failed_record_ends_the_task() -> None:
    engine = _engine()
    _meter(engine, 900, 2.0, T0 + timedelta(minutes=3))

    async def failing(decisions: Sequence[Decision], now: datetime) -> None:
        raise OSError("database or disk is full")

    closer = WindowCloser(
        lambda: engine, failing, SetClock(lambda: T0 + timedelta(minutes=16)), every_s=0.01
    )
    with pytest.raises(OSError, match="disk is full"):
        async with asyncio.timeout(10):
            await closer.run()
    assert closer.closed == 0


METER = """
einblick_policy: 1
customer: berg-partner
name: Berg & Partner
language: en
devices:
  - id: floor-meter
    name: Floor energy meter
    kind: meter
    topics:
      - pattern: "tele/berg-meter/SENSOR"
        stream: telemetry
grants:
  - id: energy-billing
    recipient: energy-provider
    purpose: Billing
    legal_basis: contract
    devices: [floor-meter]
    topic: "energy/{customer}/{device}"
    aggregate:
      window: 2s
      min_count: 1
      fields:
        ENERGY.Power: [max]
"""


async def test_the_running_gateway_forwards_a_closed_window(tmp_path: Path) -> None:
    """The gateway runs the closer as its ``aggregation-windows`` task: the summary reaches
    the recipient without a further message from the device."""
    devices = [("berg-partner", "floor-meter", "Floor energy meter")]
    async with running_gateway(tmp_path, {"berg.yaml": METER}, devices) as h:
        meter = await h.device("berg-partner", "floor-meter")
        try:
            body = {"ENERGY": {"Power": 700, "Total": 1.0}}
            await meter.publish("tele/berg-meter/SENSOR", orjson.dumps(body), 1)
            await h.wait_committed(1)
            assert h.cloud.received == []  # nothing leaves before the window closes
            await h.cloud.wait_for(1, timeout=20)
        finally:
            await meter.close()
        [summary] = h.cloud.payloads("energy/")
        assert summary["ENERGY.Power"] == {"max": 700}
        assert h.gateway.windows.closed == 1


async def test_a_window_closed_while_the_clock_is_behind_is_judged_at_both_times() -> None:
    """The closer hands the engine the system clock's reading while it is behind the log's
    time: a summary the grant's hours allow only at one of the two is withheld."""
    grant = {"aggregate": {"window": "5m", "fields": {"t": ["mean"]}}, "hours": ["08:00-18:00"]}
    engine = make_engine(grant)
    for second in range(3):
        at = T0 + timedelta(seconds=second)  # 11:00 in Berlin
        engine.evaluate(Message("acme/dev/anna", b'{"t":1}', at), at)
    closed = T0 + timedelta(minutes=6)
    recorded = Recorded()
    clock = SetClock(lambda: closed, behind=closed - timedelta(hours=10))  # 01:06 by the clock
    closer = WindowCloser(lambda: engine, recorded, clock)
    assert await closer.close_due() == 1
    [([summary], _)] = recorded.calls
    assert summary.payload is None and summary.reason is not None
    assert summary.reason.code == "clock_behind" and summary.reason.params["what"] == "hours"
