"""Specificity: which of a grant's field paths decides a leaf (``policies.paths.specificity``).

A literal key beats ``*`` at every depth, a deeper rule beats a shallower one, and the order in
which a grant lists its fields never changes what leaves.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from policies.decision import Outcome
from policies.message import Message
from policies.paths import Node, Release, Rule, insert, release_root, specificity
from policies.treatments import pseudonymise

from .conftest import NOW, Keys, make_engine

TOPIC = "acme/dev/jjolie"
KEY = Keys().key("acme", "r1")
VAN = {
    "driver": {"name": "Hans Maier", "id": 17},
    "position": {"lat": 52.520008, "lon": 13.404954},
    "speed": 48,
}


def _released(fields: dict[str, Any], payload: dict[str, Any]) -> Any:
    engine = make_engine({"fields": fields})
    (decision,) = engine.evaluate(Message(TOPIC, orjson.dumps(payload), NOW), NOW)
    return decision, orjson.loads(decision.payload) if decision.payload else None


def test_star_keep_beside_a_pseudonymised_name_does_not_release_the_name_raw() -> None:
    decision, out = _released({"*": "keep", "driver.name": "pseudonymise"}, VAN)
    assert KEY is not None
    assert out["driver"]["name"] == pseudonymise("Hans Maier", KEY)
    assert "Hans Maier" not in decision.payload.decode()
    assert out["driver"]["id"] == 17 and out["speed"] == 48  # what only * names stays kept
    assert decision.outcome is Outcome.ALTERED
    assert [a.path for a in decision.altered] == ["driver.name"]
    assert "driver.id" in decision.shared and "driver.name" not in decision.shared


def test_star_keep_beside_a_coarsened_position_does_not_release_the_precise_position() -> None:
    fields = {"*": "keep", "position.lat": {"coarsen": {"grid_m": 1000, "lon": "lon"}}}
    decision, out = _released(fields, VAN)
    assert out["position"] != VAN["position"]
    assert "52.520008" not in decision.payload.decode()
    assert sorted(a.path for a in decision.altered) == ["position.lat", "position.lon"]


def _walk(fields: dict[str, Rule], payload: Any) -> tuple[dict[str, Any], Release]:
    root = Node()
    for path, rule in fields.items():
        insert(root, path, rule)
    rel = Release(b"k" * 32)
    return release_root(payload, root, rel), rel


KEEP = Rule("keep", "")
MARK = Rule("pseudonymise", "", lambda v, p, r: "X")

# (fields, payload, released): the rule that must decide each leaf.
TABLE: list[tuple[dict[str, Rule], Any, Any]] = [
    # deeper beats shallower, whichever is literal
    ({"*": KEEP, "a.b": MARK}, {"a": {"b": 1, "c": 2}}, {"a": {"b": "X", "c": 2}}),
    ({"a": KEEP, "a.b": MARK}, {"a": {"b": 1, "c": 2}}, {"a": {"b": "X", "c": 2}}),
    ({"a": MARK, "a.b": KEEP}, {"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": "X"}}),
    # a literal key beats * at the first level where the paths differ
    ({"a": MARK, "*.b": KEEP}, {"a": {"b": 1}, "z": {"b": 2}}, {"a": "X", "z": {"b": 2}}),
    ({"*.*": KEEP, "*.b": MARK}, {"a": {"b": 1, "c": 2}}, {"a": {"b": "X", "c": 2}}),
    ({"a.*": KEEP, "*.b": MARK}, {"a": {"b": 1}, "z": {"b": 2}}, {"a": {"b": 1}, "z": {"b": "X"}}),
    # arrays: the element path is deeper than the array
    ({"r": KEEP, "r[].who": MARK}, {"r": [{"who": "h", "v": 1}]}, {"r": [{"who": "X", "v": 1}]}),
    ({"*": KEEP, "r[]": MARK}, {"r": [1, 2], "s": 3}, {"r": ["X", "X"], "s": 3}),
    # a deeper path that does not fit the value's shape gives way to the shallower rule
    ({"*": KEEP, "a.b": MARK}, {"a": "flat"}, {"a": "flat"}),
    ({"a": MARK, "a.b": KEEP}, {"a": [1]}, {"a": "X"}),
]


@pytest.mark.parametrize(("fields", "payload", "released"), TABLE)
def test_the_most_specific_path_decides_whatever_the_order(
    fields: dict[str, Rule], payload: Any, released: Any
) -> None:
    for order in itertools.permutations(fields.items()):
        out, _ = _walk(dict(order), payload)
        assert out == released, [path for path, _ in order]


def test_the_rank_orders_literal_over_star_and_deeper_over_shallower() -> None:
    assert specificity("a") > specificity("*")
    assert specificity("a.b") > specificity("a")
    assert specificity("*.b") > specificity("*")
    assert specificity("a") > specificity("*.b")  # literal wins at the first level
    assert specificity("r[].v") > specificity("r[]") > specificity("r")


def test_describe_states_the_rule_where_two_entries_name_the_same_field() -> None:
    from policies.describe import describe

    engine = make_engine({"fields": {"*": "keep", "driver.name": "pseudonymise"}})
    (policy,) = engine.policies()
    english = describe(policy, "en")
    assert "every other field (*) unchanged" in english
    assert "the more precise one applies: a named field before *" in english
    assert "Nennen zwei Einträge dasselbe Feld, gilt der genauere" in describe(policy, "de")
    plain = make_engine({"fields": {"speed": "keep", "driver.name": "pseudonymise"}})
    (policy,) = plain.policies()
    assert "more precise one applies" not in describe(policy, "en")


def test_policy_explain_names_the_line_that_decided_each_field(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from .test_cli import run

    policy = tmp_path / "vans.yaml"
    policy.write_text(
        "\n".join(
            [
                "einblick_policy: 1",
                "customer: vans",
                "name: Fahrdienst",
                "language: en",
                "devices:",
                "  - id: van-1",
                "    name: Van 1",
                "    kind: van",
                "    topics: [{pattern: 'vans/{driver}/van-1', stream: telemetry}]",
                "grants:",
                "  - id: dispatch",
                "    recipient: logistics",
                "    purpose: Dispatch",
                "    legal_basis: contract",
                "    devices: [van-1]",
                "    topic: 'dispatch/{driver}'",
                "    topic_levels: {driver: pseudonymise}",
                "    fields:",
                "      '*': keep",
                "      driver.name: pseudonymise",
            ]
        ),
        encoding="utf-8",
    )
    message = orjson.dumps(VAN).decode()
    argv = ["policy", "explain", str(policy), "--topic", "vans/hans/van-1", "--message", message]
    assert run([*argv, "--now", "2026-06-03T09:30:00Z"]) == 0
    out = capsys.readouterr().out
    assert "    driver.name: altered (pseudonymise), by 'driver.name'" in out
    assert "    driver.id: shared, by '*'" in out
    assert "    $topic.driver: altered (pseudonymise), by 'topic_levels.driver'" in out
    assert "Hans Maier" not in out
