"""Benchmark of the policy engine alone: decisions per second for a realistic mix.

    python -m gateway.bench.policies [--messages 100000]

The three example policies run in one engine; messages cycle through oven telemetry, oven
status text, OwnTracks locations and events, Zigbee occupancy, a Tasmota meter (aggregated), a
badge reader (no grant) and an unknown device. The clock advances 50 ms per message, so rate
limits and hours apply as in the field. The baseline is plain ``json.loads`` + ``json.dumps``
of the same payloads in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta

from policies.compiler import compile_policy
from policies.engine import Engine
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.loader import load_policy
from policies.message import Message

__all__ = ["MIX", "main", "run"]

MIX: list[tuple[str, bytes]] = [
    (
        "bakery/oven-1/telemetry",
        b'{"ts":"2026-06-03T09:29:41Z","temperature":231.37,"setpoint":230,"door_open":false,'
        b'"burner_on":true,"program":"Broetchen","operator":"Anna","serial":"OV-2231-0042",'
        b'"energy_kwh":12.7,"errors":[{"code":"E17","since":1717400000}]}',
    ),
    ("bakery/oven-2/status", b"Online"),
    (
        "owntracks/jjolie/van-01",
        b'{"_type":"location","acc":35,"alt":0,"batt":75,"bs":1,"conn":"w","lat":52.195913,'
        b'"lon":7.688245,"m":1,"tag":"Coffee","tid":"C1","tst":1699882482,"vel":42}',
    ),
    (
        "owntracks/mmuster/van-02/event",
        b'{"_type":"transition","event":"enter","desc":"Depot Nord","tst":1699882482,'
        b'"lat":52.1,"lon":7.6,"acc":12,"tid":"M2","wtst":1699800000}',
    ),
    (
        "zigbee2mqtt/berg-meeting-room",
        b'{"battery":100,"voltage":3175,"illuminance":0,"linkquality":18,"occupancy":false,'
        b'"illuminance_lux":0}',
    ),
    (
        "tele/berg-meter/SENSOR",
        b'{"Time":"2021-03-13T09:20:26","ENERGY":{"TotalStartTime":"2021-03-13T09:20:26",'
        b'"Total":7970.903,"Yesterday":3.198,"Today":6.024,"Period":63,"Power":860,'
        b'"Current":4.000},"IP":"192.168.1.20","MAC":"50:02:91:12:34:56"}',
    ),
    ("bakery/back-door/badge", b'{"badge":"04:51:2A:9C","door":"back","granted":true}'),
    ("unknown/device/state", b'{"state":"ON"}'),
]


class _Keys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return (customer + recipient).encode().ljust(32, b"k")


def run(count: int) -> dict[str, float]:
    policies = [compile_policy(load_policy(example_path(n)), RECIPIENTS) for n in EXAMPLES]
    engine = Engine(policies, _Keys())
    start = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)  # 11:00 in Berlin: inside every "hours"
    step = timedelta(milliseconds=50)
    messages = [
        Message(MIX[i % len(MIX)][0], MIX[i % len(MIX)][1], start + step * i) for i in range(count)
    ]
    for message in messages[:2000]:  # warm up caches and branch predictors
        engine.evaluate(message, message.received_at)
    engine = Engine(policies, _Keys())

    decisions = 0
    released = 0
    began = time.perf_counter()
    for message in messages:
        out = engine.evaluate(message, message.received_at)
        decisions += len(out)
        released += sum(1 for d in out if d.payload is not None)
    engine_s = time.perf_counter() - began
    flushed = engine.flush(messages[-1].received_at + timedelta(hours=1))

    payloads = [m.payload for m in messages]
    began = time.perf_counter()
    for payload in payloads:
        with contextlib.suppress(ValueError):
            json.dumps(json.loads(payload))
    baseline_s = time.perf_counter() - began
    return {
        "messages": count,
        "decisions": decisions,
        "released": released,
        "flushed": len(flushed),
        "engine_s": engine_s,
        "baseline_s": baseline_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    r = run(args.messages)
    per_msg_us = r["engine_s"] / r["messages"] * 1e6
    print(f"messages:            {r['messages']:>10,.0f}  (mix of {len(MIX)} kinds)")
    print(f"decisions:           {r['decisions']:>10,.0f}  ({r['released']:,.0f} released)")
    print(f"engine:              {r['decisions'] / r['engine_s']:>10,.0f} decisions/s")
    print(
        f"engine:              {r['messages'] / r['engine_s']:>10,.0f} messages/s"
        f"  ({per_msg_us:.1f} µs/message)"
    )
    print(
        f"json.loads+dumps:    {r['messages'] / r['baseline_s']:>10,.0f} messages/s"
        f"  ({r['baseline_s'] / r['messages'] * 1e6:.1f} µs/message)"
    )
    print(f"aggregate windows flushed at the end: {r['flushed']:.0f}")


if __name__ == "__main__":
    main()
