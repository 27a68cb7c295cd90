"""Path forms: literal, nested, wildcard, arrays; what is shared, altered and withheld."""

from __future__ import annotations

from typing import Any

import pytest

from policies.listing import MAX_PATH_CHARS, leaves
from policies.paths import Node, Release, Rule, insert, release_root


def walk(paths: dict[str, Rule], payload: Any) -> tuple[dict[str, Any], Release]:
    root = Node()
    for path, rule in paths.items():
        insert(root, path, rule)
    rel = Release(b"k" * 32)
    return release_root(payload, root, rel), rel


KEEP = Rule("keep", "")

CASES: list[tuple[list[str], Any, Any, list[str], list[str]]] = [
    # (paths, payload, released, shared, withheld)
    (["a"], {"a": 1, "b": 2}, {"a": 1}, ["a"], ["b"]),
    (["a.b"], {"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, ["a.b"], ["a.c"]),
    # A kept object is shared leaf by leaf: the report and the explanation name each field.
    (["a"], {"a": {"b": 1, "c": [1]}}, {"a": {"b": 1, "c": [1]}}, ["a.b", "a.c[0]"], []),
    (
        ["sensors.*.temperature"],
        {"sensors": {"x": {"temperature": 20, "id": "s1"}, "y": {"temperature": 21}}},
        {"sensors": {"x": {"temperature": 20}, "y": {"temperature": 21}}},
        ["sensors.x.temperature", "sensors.y.temperature"],
        ["sensors.x.id"],
    ),
    (
        ["readings[].value"],
        {"readings": [{"value": 1, "who": "a"}, {"who": "b"}, {"value": 3}]},
        {"readings": [{"value": 1}, {"value": 3}]},
        ["readings[0].value", "readings[2].value"],
        ["readings[0].who", "readings[1].who"],
    ),
    (["tags[]"], {"tags": ["x", "y"]}, {"tags": ["x", "y"]}, ["tags[0]", "tags[1]"], []),
    (
        ["m[][]"],
        {"m": [[1, 2], [3]]},
        {"m": [[1, 2], [3]]},
        ["m[0][0]", "m[0][1]", "m[1][0]"],
        [],
    ),
    (
        ["*[].name"],
        {"metrics": [{"name": "Inputs/A", "value": True}], "seq": 0},
        {"metrics": [{"name": "Inputs/A"}]},
        ["metrics[0].name"],
        ["metrics[0].value", "seq"],
    ),
    (["*"], {"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}, ["a", "b.c"], []),
    (["a.b"], {"a": 5}, {}, [], ["a"]),  # partial update: shape differs, nothing released
    (["a.b"], {"a": {}}, {}, [], ["a"]),
    (["a"], {"b": 1}, {}, [], ["b"]),  # missing field
    (["a"], [1, 2], {}, [], ["$payload[0]", "$payload[1]"]),
    (["a"], "ON", {}, [], ["$payload"]),
    (
        ["switch:0.output"],
        {"switch:0": {"output": True, "id": 0}},
        {"switch:0": {"output": True}},
        ["switch:0.output"],
        ["switch:0.id"],
    ),
]


@pytest.mark.parametrize(("paths", "payload", "released", "shared", "withheld"), CASES)
def test_path_forms(
    paths: list[str], payload: Any, released: Any, shared: list[str], withheld: list[str]
) -> None:
    out, rel = walk(dict.fromkeys(paths, KEEP), payload)
    assert out == released
    assert rel.shared.items == shared
    assert rel.withheld.items == withheld


def test_literal_beats_wildcard_and_keeps_input_order() -> None:
    rounding = Rule("round", "1", lambda v, p, r: round(v))  # type: ignore[arg-type]
    out, rel = walk(
        {"s.*.t": KEEP, "s.a.t": rounding},
        {"s": {"b": {"t": 1.4}, "a": {"t": 1.6}}},
    )
    assert list(out["s"]) == ["b", "a"]
    assert out == {"s": {"b": {"t": 1.4}, "a": {"t": 2}}}
    assert [a.path for a in rel.altered.items] == ["s.a.t"]


def test_failed_treatment_withholds_the_field_and_says_why() -> None:
    from policies.rules import rule
    from policies.treatment_specs import RoundSpec

    out, rel = walk({"t": rule(RoundSpec(round=0.5)), "u": KEEP}, {"t": "warm", "u": 1})
    assert out == {"u": 1}
    assert rel.withheld.items == ["t"]
    assert rel.problems["t"].code == "treatment_failed"
    assert rel.problems["t"].params["problem"] == "not_a_number"


def test_duplicate_path_is_refused() -> None:
    root = Node()
    insert(root, "a", KEEP)
    with pytest.raises(ValueError, match="named twice"):
        insert(root, "a", KEEP)


def test_leaves_survive_deep_nesting() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    (path,) = leaves(deep, "")
    # 5,000 levels are shown as their start, "…" and the last keys: a bounded path.
    assert path.startswith("a.a.a.") and "….a" in path and path.endswith(".a"), path
    assert len(path) <= MAX_PATH_CHARS
