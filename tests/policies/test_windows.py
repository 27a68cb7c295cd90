"""Aggregation windows: samples taken, one summary per closed window, too few samples kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from policies.decision import Outcome
from policies.engine import Engine
from policies.message import Message
from policies.treatment_specs import AggregateSpec
from policies.windows import sample

from .conftest import NOW, make_engine

TOPIC = "acme/dev/jjolie"


def msg(payload: bytes) -> Message:
    return Message(TOPIC, payload, NOW)


def one(engine: Engine, payload: bytes, now: Any = NOW) -> Any:
    (decision,) = engine.evaluate(msg(payload), now)
    return decision


def test_aggregate_flushes_one_message_per_window() -> None:
    engine = make_engine({"aggregate": {"window": "5m", "fields": {"p": ["mean", "max", "count"]}}})
    start = NOW.replace(minute=0)
    for index, value in enumerate([1, 2, "3", "x"]):
        engine.evaluate(msg(orjson.dumps({"p": value})), start + timedelta(seconds=index))
    assert engine.flush(start + timedelta(minutes=4)) == []
    one(engine, b'{"p":10}', now=start + timedelta(minutes=6))  # opens the next window
    (closed,) = engine.flush(start + timedelta(minutes=6))
    body = orjson.loads(closed.payload)
    assert body["p"] == {"mean": 2.0, "max": 3.0, "count": 3}
    assert body["window"] == {"start": "2026-06-03T09:00:00Z", "end": "2026-06-03T09:05:00Z"}
    assert closed.outcome is Outcome.ALTERED and closed.altered[0].treatment == "aggregate"
    (last,) = engine.flush(start + timedelta(minutes=11))
    # One sample: its "mean" would be the raw value; below min_count (3) it stays here.
    assert last.outcome is Outcome.WITHHELD and last.payload is None
    assert last.reason.code == "too_few_samples"
    engine.evaluate(msg(b'{"p":1}'), start + timedelta(minutes=20))
    engine.withdraw("acme", "g1", start + timedelta(minutes=21))
    (withdrawn,) = engine.flush(start + timedelta(minutes=30))
    assert withdrawn.reason.code == "withdrawn" and withdrawn.payload is None


def test_a_sample_takes_numbers_and_flags_and_leaves_the_rest() -> None:
    spec = AggregateSpec.model_validate(
        {"window": "5m", "fields": {"p": ["mean"], "on": ["sum"], "a.b": ["max"], "x": ["min"]}}
    )
    got = sample(spec, {"p": "2.5", "on": True, "a": {"b": 7}, "x": "warm"})
    assert got == {"p": 2.5, "on": 1.0, "a.b": 7.0}
    assert sample(spec, ["not", "an", "object"]) == {}
