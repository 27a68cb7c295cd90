"""Simulated devices emit the shapes of the real samples, deterministically, with plausible values."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pytest

from policies.profiles import PROFILES, profile
from simulators.behaviour import CET, MUNICH_DELIVERY_ROUND, oven_temperature
from simulators.devices import (
    OwnTracksPhone,
    SimulatedDevice,
    TasmotaOven,
    ZigbeeMotionSensor,
)
from simulators.energy import SmartMeter
from simulators.fleet import build_fleet
from simulators.sparkplug import SparkplugOven
from simulators.wire import Fixed, dumps
from tests.data import family as corpus_family

# Tuesday 14 November 2023, 10:00 CET: office hours.
T0 = datetime(2023, 11, 14, 10, 0, tzinfo=CET).timestamp()

SPARKPLUG_TYPES: dict[str, type | tuple[type, ...]] = {
    "Boolean": bool,
    "String": str,
    "Float": float,
    "Double": float,
    "Int32": int,
    "UInt64": int,
}


def _samples(name: str) -> list[dict[str, Any]]:
    return [s.raw for s in corpus_family(name)]


def _normalise(value: Any, family: str) -> Any:
    """Sparkplug metric values are typed by their dataType, not by the sample's one device."""
    if family == "sparkplug_b" and isinstance(value, dict) and "metrics" in value:
        metrics = []
        for m in value["metrics"]:
            expected = SPARKPLUG_TYPES[m["dataType"]]
            ok = isinstance(m["value"], expected) and not (
                expected is int and isinstance(m["value"], bool)
            )
            metrics.append({**m, "value": True if ok else None})  # None never conforms
        return {**value, "metrics": metrics}
    return value


def conforms(generated: Any, sample: Any) -> bool:
    """Same keys, same JSON types (bool, int, float, str kept apart), recursively."""
    if isinstance(sample, dict):
        return (
            isinstance(generated, dict)
            and generated.keys() == sample.keys()
            and all(conforms(generated[k], sample[k]) for k in sample)
        )
    if isinstance(sample, list):
        return isinstance(generated, list) and all(
            any(conforms(g, s) for s in sample) for g in generated
        )
    return type(generated) is type(sample)


def _run(device: SimulatedDevice, n: int, step: float = 30.0) -> list[tuple[str, bytes]]:
    return [device.next_message(T0 + k * step) for k in range(n)]


def _messages(family: str) -> list[tuple[str, bytes]]:
    out = []
    for device in build_fleet(family, 4, seed=7):
        out.extend(_run(device, 12))
    return out


@pytest.mark.parametrize("family", sorted(PROFILES))
def test_generated_messages_parse_like_the_real_samples(family: str) -> None:
    prof = profile(family)
    samples = _samples(family)
    seen_patterns = set()
    for topic, payload in _messages(family):
        m = prof.match(topic)
        assert m is not None, f"{topic} matches no {family} topic pattern"
        seen_patterns.add(m.pattern)
        same_layout = [
            s for s in samples if (sm := prof.match(s["topic"])) and sm.pattern == m.pattern
        ]
        if family == "sparkplug_b" and not same_layout:  # NBIRTH: same payload structure
            same_layout = samples
        if not same_layout:
            # A layout the samples do not show (OpenEVSE's per-key status topics): plain text
            # the profile describes as a whole body.
            assert prof.field("$payload", m.pattern) is not None, topic
            assert payload.decode("ascii").strip() == payload.decode("ascii"), payload
            continue
        plain = [s for s in samples if not s["payload"].lstrip().startswith("{")]
        if any(s in plain for s in same_layout):
            assert payload.decode() in {"ON", "OFF"}, payload
            continue
        body = _normalise(json.loads(payload), family)
        shapes = [_normalise(json.loads(s["payload"]), family) for s in same_layout]
        assert any(conforms(body, shape) for shape in shapes), f"{topic}: {payload!r}"
    assert seen_patterns


def test_the_van_drives_its_route() -> None:
    phone = OwnTracksPhone("anna", "phone", "AA", seed=3)
    fixes = [json.loads(p) for _, p in _run(phone, 21, step=30.0)]  # ten minutes
    assert phone.topic == "owntracks/anna/phone"
    start, end = fixes[0], fixes[-1]
    moved_m = math.dist((start["lat"], start["lon"]), (end["lat"], end["lon"])) * 111_000
    assert 1_000 < moved_m < 10_000
    for fix in fixes:  # stays in Munich
        assert 48.10 < fix["lat"] < 48.20 and 11.49 < fix["lon"] < 11.63
    assert [f["tst"] for f in fixes] == sorted(f["tst"] for f in fixes)
    assert MUNICH_DELIVERY_ROUND.length_m > 10_000


def test_the_oven_heats_and_cools() -> None:
    temps = [oven_temperature(s)[0] for s in range(0, 5400, 60)]
    assert min(temps) < 40 and max(temps) > 175
    assert temps.index(max(temps)) < temps.index(min(temps[40:]))
    oven = TasmotaOven("backofen_1", seed=1)
    bodies = [json.loads(p) for _, p in _run(oven, 90, step=60.0)]
    readings = [b["DS18B20"]["Temperature"] for b in bodies if "DS18B20" in b]
    assert max(readings) - min(readings) > 100


def test_occupancy_follows_office_hours() -> None:
    sensor = ZigbeeMotionSensor("0x00158d0001e50d78", seed=5)
    night = datetime(2023, 11, 14, 3, 0, tzinfo=CET).timestamp()
    by_day = [json.loads(sensor.next_message(T0 + k)[1])["occupancy"] for k in range(200)]
    by_night = [json.loads(sensor.next_message(night + k)[1])["occupancy"] for k in range(200)]
    assert sum(by_day) > 100
    assert sum(by_night) < 10


def test_the_meter_only_counts_up() -> None:
    meter = SmartMeter("zaehler_1", seed=2)
    totals = [
        json.loads(p)["ENERGY"]["Total"] for _, p in _run(meter, 40, step=900.0) if b"ENERGY" in p
    ]
    assert totals == sorted(totals) and totals[-1] > totals[0]


def test_sparkplug_births_come_before_data_and_seq_counts() -> None:
    oven = SparkplugOven("Werk Nord", "Linie 1", "Ofen 1", seed=1)
    msgs = _run(oven, 5)
    kinds = [topic.split("/")[2] for topic, _ in msgs]
    assert kinds == ["NBIRTH", "DBIRTH", "DDATA", "DDATA", "DDATA"]
    assert [json.loads(p)["seq"] for _, p in msgs] == [0, 1, 2, 3, 4]
    birth_names = {m["name"] for m in json.loads(msgs[1][1])["metrics"]}
    for _, p in msgs[2:]:
        assert {m["name"] for m in json.loads(p)["metrics"]} <= birth_names


def test_firmware_literals_survive() -> None:
    assert dumps({"Current": Fixed(4.0, 3), "C1": Fixed(1.0, 2)}) == b'{"Current":4.000,"C1":1.00}'
    assert (
        dumps({"a": [1, "°C", None, True]}, spaced=True) == '{"a": [1, "°C", null, true]}'.encode()
    )
    _, body = TasmotaOven("backofen_1", seed=1).next_message(T0)
    assert b'", "DS18B20":' in body  # the blank after the comma, as Tasmota prints it
    _, body = SmartMeter("zaehler_1", seed=1).next_message(T0)
    assert b'"Today":0.000' in body
