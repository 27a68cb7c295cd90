"""Aggregation with a floor: a window of fewer than ``min_count`` samples never leaves, the
explanation says how many samples a summary is made of, and booleans aggregate."""

from __future__ import annotations

from datetime import timedelta

import orjson

from policies.decision import Outcome
from policies.describe import describe
from policies.message import Message

from .conftest import NOW, make_engine

TOPIC = "acme/dev/jjolie"
START = NOW.replace(minute=0)


def _feed(engine: object, values: list[object], field: str = "p") -> None:
    for index, value in enumerate(values):
        message = Message(TOPIC, orjson.dumps({field: value}), START)
        engine.evaluate(message, START + timedelta(seconds=index))  # type: ignore[attr-defined]


def test_a_window_of_one_sample_does_not_release_the_raw_value() -> None:
    engine = make_engine({"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}})
    _feed(engine, [21.7])
    (window,) = engine.flush(START + timedelta(minutes=1))
    assert window.outcome is Outcome.WITHHELD and window.payload is None
    assert window.reason.code == "too_few_samples"
    text = engine.explain(window, "en")
    assert "only 1 sample arrived for “p” in this window" in text
    assert "from 3 samples on" in text
    german = engine.explain(window, "de")
    assert "nur 1 Messwert zusammen" in german and "ab 3 Messwerten" in german
    assert "summarised as mean" not in text


def test_the_floor_is_per_grant_and_the_explanation_counts_the_samples() -> None:
    engine = make_engine(
        {"aggregate": {"window": "1m", "fields": {"p": ["mean", "count"]}, "min_count": 2}}
    )
    _feed(engine, [1, 3])
    (window,) = engine.flush(START + timedelta(minutes=1))
    assert orjson.loads(window.payload)["p"] == {"mean": 2.0, "count": 2}
    assert "summarised as mean and count per minute (from 2 samples)" in engine.explain(
        window, "en"
    )
    assert "(aus 2 Messwerten)" in engine.explain(window, "de")


def test_booleans_aggregate_as_count_and_share_of_true() -> None:
    engine = make_engine(
        {"aggregate": {"window": "1m", "fields": {"occupied": ["mean", "sum", "count"]}}}
    )
    _feed(engine, [True, False, True, True], field="occupied")
    (window,) = engine.flush(START + timedelta(minutes=1))
    assert window.outcome is Outcome.ALTERED
    assert orjson.loads(window.payload)["occupied"] == {"mean": 0.75, "sum": 3.0, "count": 4}


def test_describe_states_the_floor() -> None:
    engine = make_engine({"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}})
    (policy,) = engine.policies()
    assert "A window with fewer than 3 samples is not passed on." in describe(policy, "en")
    assert "weniger als 3 Messwerten wird nicht weitergegeben" in describe(policy, "de")


def test_grant_order_does_not_change_what_an_aggregate_grant_summarises() -> None:
    # The aggregate is the more protective treatment of p for this recipient: the rounded
    # single values do not leave beside the summary, whichever grant comes first.
    aggregate = {"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}}
    fields = {"fields": {"p": {"round": 1}, "q": "keep"}}
    results = []
    for grants in ((aggregate, fields), (fields, aggregate)):
        engine = make_engine(*grants)
        decisions = []
        for index, value in enumerate([1.2, 2.2, 3.2]):
            message = Message(TOPIC, orjson.dumps({"p": value, "q": index}), START)
            (decision,) = engine.evaluate(message, START + timedelta(seconds=index))
            assert decision.payload is not None
            assert decision.field_reasons["p"].code == "summarised_elsewhere"
            assert "p is passed on to this recipient only as a summary per minute" in (
                engine.explain(decision, "en").replace("“", "").replace("”", "")
            )
            decisions.append(orjson.loads(decision.payload))
        (window,) = engine.flush(START + timedelta(minutes=1))
        results.append((decisions, orjson.loads(window.payload)["p"]))
    assert results[0] == results[1]
    assert results[0] == ([{"q": 0}, {"q": 1}, {"q": 2}], {"mean": 2.2})
