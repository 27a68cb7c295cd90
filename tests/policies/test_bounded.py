"""Bounded cost per message: whatever keys a device sends, a decision, its explanation and its
log entry stay a few KB, and the customer is told how many fields were not listed."""

from __future__ import annotations

import tracemalloc
from typing import Any

import orjson

from policies.decision import Outcome
from policies.engine import Engine
from policies.explain import MAX_TEXT_CHARS
from policies.listing import LIST_CHARS, MAX_KEY_CHARS, MAX_PATH_CHARS, child
from policies.message import Message

from .conftest import NOW, make_engine

TOPIC = "acme/dev/jjolie"


def poison(levels: int, key_chars: int, leaves: int) -> bytes:
    """``levels`` nested keys of ``key_chars`` characters over ``leaves`` leaves: every leaf's
    path repeats the whole chain (the message of issue 14, at any scale)."""
    inner: dict[str, Any] = {f"k{i:05d}": i for i in range(leaves)}
    for level in range(levels):
        inner = {f"{level:03d}" + "x" * (key_chars - 3): inner}
    return orjson.dumps(inner)


def decide(engine: Engine, payload: bytes) -> Any:
    (decision,) = engine.evaluate(Message(TOPIC, payload, NOW), NOW)
    return decision


def _check_listed(paths: tuple[str, ...]) -> None:
    assert paths, "a capped list still names its first paths"
    assert all(len(p) <= MAX_PATH_CHARS for p in paths), max(map(len, paths))
    assert sum(map(len, paths)) <= LIST_CHARS + MAX_PATH_CHARS


def test_a_deep_key_poison_message_costs_a_few_mb_and_says_how_many_more() -> None:
    payload = poison(levels=100, key_chars=100, leaves=2000)  # 2,000 paths of 10 KB each
    for engine in (make_engine(), make_engine({"fields": {"k": "keep"}})):
        tracemalloc.start()
        try:
            decision = decide(engine, payload)
            texts = {lang: engine.explain(decision, lang) for lang in ("de", "en")}
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert decision.outcome is Outcome.WITHHELD
        _check_listed(decision.withheld)
        more = decision.omitted["withheld"]
        assert len(decision.withheld) + more == 2000  # every leaf counted, none lost
        assert f"and {more:,} more fields" in texts["en"], texts["en"]
        assert f"und {more:,} weitere Felder".replace(",", ".") in texts["de"], texts["de"]
        assert all(len(t) < 3000 for t in texts.values()), [len(t) for t in texts.values()]
        # Before the caps this built 2,000 10 KB paths three times over (~60 MB).
        assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def test_a_wide_release_lists_its_first_fields_and_releases_them_all() -> None:
    engine = make_engine({"fields": {"sensors.*": "keep", "serial": "pseudonymise"}})
    sensors = {f"s{i:04d}": i for i in range(3000)}
    payload = orjson.dumps({"sensors": sensors, "serial": "OV-1", "extra": 1})
    decision = decide(engine, payload)
    assert orjson.loads(decision.payload)["sensors"] == sensors  # nothing released is lost
    _check_listed(decision.shared)
    assert len(decision.shared) + decision.omitted["shared"] == 3000
    assert decision.withheld == ("extra",) and "withheld" not in decision.omitted
    text = engine.explain(decision, "en")
    assert "sensors.s0000, sensors.s0001" in text
    assert f"and {decision.omitted['shared']:,} more fields" in text


def test_long_keys_are_shown_cut_and_marked() -> None:
    key = "k" * 5000
    assert child("", key) == "k" * (MAX_KEY_CHARS - 1) + "…"
    deep = child(child("a" * 100, "b" * 100), key)
    assert len(deep) <= MAX_PATH_CHARS
    assert deep.startswith("a" * 30) and deep.endswith("…")
    decision = decide(make_engine(), orjson.dumps({key: 1, "short": {key: [1, 2]}}))
    assert decision.withheld == (
        "k" * 39 + "…",
        "short." + "k" * 39 + "…[0]",
        "short." + "k" * 39 + "…[1]",
    )


def test_one_more_field_is_singular_and_texts_are_capped() -> None:
    engine = make_engine()
    # Just over the listing budget (LIST_CHARS), then one more.
    listed = -(-LIST_CHARS // 39)  # 39-character keys until the budget is reached
    keys = [f"{i:02d}" + "k" * 37 for i in range(listed + 1)]
    decision = decide(engine, orjson.dumps(dict.fromkeys(keys, 1)))
    assert decision.omitted == {"withheld": 1}
    assert engine.explain(decision, "en").count("and one more field") == 1
    assert "und ein weiteres Feld" in engine.explain(decision, "de")
    long_purpose = make_engine(
        {"fields": {"t": "keep"}, "purpose": {"de": "p" * 9000, "en": "p" * 9000}}
    )
    released = decide(long_purpose, b'{"t": 1}')
    text = long_purpose.explain(released, "en")
    assert len(text) == MAX_TEXT_CHARS and text.endswith("…")
