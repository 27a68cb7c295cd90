"""Sparkplug B in the pure engine: BIRTH state, aliases, per-metric decisions, no_birth."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from policies.compiler import compile_policy
from policies.decision import Outcome
from policies.engine import Engine
from policies.loader import load_policy
from policies.message import Message
from policies.sparkplug import SparkplugState, encode, parse_topic
from simulators.sparkplug import SparkplugOven

FACTORY = (
    Path(__file__).resolve().parents[2] / "policies" / "examples" / "sparkplug" / "factory.yaml"
)
NOW = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)
NODE = "spBv1.0/Werk Nord/{}/Linie 1"
OVEN = "spBv1.0/Werk Nord/{}/Linie 1/Ofen 1"


class Keys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return b"k" * 32


def engine() -> Engine:
    policy = compile_policy(load_policy(FACTORY), {"oven-maker": "Ofenbau"})
    return Engine([policy], Keys())


def send(e: Engine, topic: str, payload: bytes) -> list:  # type: ignore[type-arg]
    return e.evaluate(Message(topic, payload, NOW), NOW)


NBIRTH = encode([("bdSeq", 1, "UInt64", 0)], timestamp=1, seq=0)
DBIRTH = encode(
    [
        ("Temperature", 10, "Float", 180.3),
        ("Batch", 11, "Int32", 7),
        ("Heater", 12, "Boolean", True),
        ("Offset", 13, "Int16", -3),
    ],
    timestamp=2,
    seq=1,
)
DDATA = encode(
    [(None, 10, "Float", 181.26), (None, 11, "Int32", 8), (None, 13, "Int16", -5)],
    timestamp=3,
    seq=2,
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("spBv1.0/g/NBIRTH/n", ("g", "NBIRTH", "n", None)),
        ("spBv1.0/g/DDATA/n/d", ("g", "DDATA", "n", "d")),
        ("spBv1.0/STATE/host", None),
        ("spBv1.0/g/DDATA/n", None),
        ("other/g/DDATA/n/d", None),
    ],
)
def test_parse_topic(topic: str, expected: tuple[str, str, str, str | None] | None) -> None:
    got = parse_topic(topic)
    assert (None if got is None else (got.group, got.kind, got.node, got.device)) == expected


def test_data_is_decoded_against_its_birth_and_released_per_metric() -> None:
    e = engine()
    send(e, NODE.format("NBIRTH"), NBIRTH)
    [birth] = send(e, OVEN.format("DBIRTH"), DBIRTH)
    assert birth.outcome is Outcome.ALTERED
    [decision] = send(e, OVEN.format("DDATA"), DDATA)
    assert decision.outcome is Outcome.ALTERED
    assert decision.payload is not None
    assert orjson.loads(decision.payload) == {"Temperature": 181.5}  # round 0.5; aliases resolved
    assert "Batch" in decision.withheld and "Offset" in decision.withheld
    assert [a.path for a in decision.altered] == ["Temperature"]
    text = e.explain(decision, "en")
    assert "Temperature" in text and "Batch" in text


def test_data_before_birth_is_withheld_with_no_birth() -> None:
    e = engine()
    [decision] = send(e, OVEN.format("DDATA"), DDATA)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "no_birth"
    assert "BIRTH" in e.explain(decision, "en") or "Geburt" in e.explain(decision, "de")


def test_device_birth_without_node_birth_and_deaths_forget_state() -> None:
    e = engine()
    send(e, OVEN.format("DBIRTH"), DBIRTH)
    [decision] = send(e, OVEN.format("DDATA"), DDATA)
    assert decision.reason is not None and decision.reason.code == "no_birth"  # no NBIRTH
    send(e, NODE.format("NBIRTH"), NBIRTH)
    send(e, OVEN.format("DBIRTH"), DBIRTH)
    assert send(e, OVEN.format("DDATA"), DDATA)[0].outcome is Outcome.ALTERED
    send(e, OVEN.format("DDEATH"), encode([], timestamp=4, seq=3))
    assert send(e, OVEN.format("DDATA"), DDATA)[0].reason.code == "no_birth"  # type: ignore[union-attr]
    send(e, OVEN.format("DBIRTH"), DBIRTH)
    send(e, NODE.format("NDEATH"), encode([("bdSeq", None, "UInt64", 0)], timestamp=5, seq=0))
    assert send(e, OVEN.format("DDATA"), DDATA)[0].reason.code == "no_birth"  # type: ignore[union-attr]


def test_unknown_alias_is_no_birth_and_garbage_is_withheld() -> None:
    e = engine()
    send(e, NODE.format("NBIRTH"), NBIRTH)
    send(e, OVEN.format("DBIRTH"), DBIRTH)
    stray = encode([(None, 99, "Float", 1.0)], timestamp=3, seq=2)
    assert send(e, OVEN.format("DDATA"), stray)[0].reason.code == "no_birth"  # type: ignore[union-attr]
    [bad] = send(e, OVEN.format("DDATA"), b"\xff\xff\xff")
    assert bad.outcome is Outcome.WITHHELD


def test_signed_integers_and_the_json_rendering() -> None:
    state = SparkplugState()
    topic = parse_topic(OVEN.format("DBIRTH"))
    assert topic is not None
    node = parse_topic(NODE.format("NBIRTH"))
    assert node is not None
    state.decode("c", node, NBIRTH)
    assert state.decode("c", topic, DBIRTH) == {
        "Temperature": 180.3,
        "Batch": 7,
        "Heater": True,
        "Offset": -3,
    }
    rendering = (
        b'{"timestamp":1,"metrics":[{"name":"Inputs/A","dataType":"Boolean","value":true}],"seq":0}'
    )
    assert state.decode("c", topic, rendering) == {"Inputs/A": True}


@pytest.mark.parametrize("binary", [True, False])
def test_simulated_oven_passes_in_both_encodings(binary: bool) -> None:
    e = engine()
    oven = SparkplugOven("Werk Nord", "Linie 1", "Ofen 1", seed=3, binary=binary)
    outcomes = []
    for i in range(6):
        topic, payload = oven.next_message(1_780_000_000 + i)
        assert payload[:1] != b"{" if binary else payload[:1] == b"{"
        outcomes.append(send(e, topic, payload)[0])
    assert outcomes[0].reason is not None and outcomes[0].reason.code == "no_grant"  # NBIRTH
    for decision in outcomes[1:]:
        assert decision.outcome is Outcome.ALTERED, decision.reason
        assert decision.payload is not None and "Temperature" in orjson.loads(decision.payload)


F32 = struct.Struct("<f")


@pytest.mark.parametrize(
    "value", [181.2, 1.0000001, 1.0000002, 0.1, 16777217.0, 3.4028235e38, 1e-45, -2.5e-7]
)
def test_float32_metrics_are_the_number_the_device_sent(value: float) -> None:
    state = SparkplugState()
    for topic, raw in (
        (NODE.format("NBIRTH"), NBIRTH),
        (OVEN.format("DBIRTH"), encode([("Temperature", 10, "Float", value)], timestamp=2, seq=1)),
    ):
        parsed = parse_topic(topic)
        assert parsed is not None
        decoded = state.decode("c", parsed, raw)
    assert isinstance(decoded, dict)
    sent = F32.unpack(F32.pack(value))[0]  # what the float32 on the wire holds
    got = decoded["Temperature"]
    # The same float32 (a fixed 7 digits made 1.0000001 and 1.0000002 both 1.0) ...
    assert F32.pack(got) == F32.pack(sent), (got, sent)
    # ... in its shortest decimal form (181.2, not 181.1999969482422).
    assert len(repr(got)) <= len(repr(value)) + 1
