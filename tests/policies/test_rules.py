"""A grant's field lines as rules: each knows its grant, its source line and how coarse it is."""

from __future__ import annotations

import pytest

from policies.combine import AGGREGATE, most_protective, release_with
from policies.model import GrantSpec
from policies.paths import Release
from policies.rules import FieldLineError, aggregate_shadow, field_rules, rule
from policies.treatment_specs import AggregateSpec, RoundSpec, TruncateSpec


def _grant(**fields: object) -> GrantSpec:
    return GrantSpec.model_validate(
        {
            "id": "g",
            "recipient": "r",
            "purpose": "p",
            "legal_basis": "contract",
            "devices": "*",
            "fields": fields,
        }
    )


def test_coarser_rules_have_higher_levels() -> None:
    fine, coarse = rule(RoundSpec(round=0.5)), rule(RoundSpec(round=10))
    assert most_protective(fine, [coarse]) is coarse
    minute, day = rule(TruncateSpec(truncate="minute")), rule(TruncateSpec(truncate="day"))
    assert most_protective(day, [minute]) is day


def test_field_rules_carry_grant_and_source() -> None:
    trie, whole = field_rules(_grant(**{"lat": {"coarsen": {"grid_m": 500, "lon": "lng"}}}))
    assert whole is None
    lat, lng = trie.keys["lat"].rule, trie.keys["lng"].rule
    assert lat is not None and lng is not None
    assert (lat.grant, lat.source, lat.level) == ("g", "lat", 500)
    assert (lng.grant, lng.source, lng.name) == ("g", "lat", "coarsen")


def test_whole_body_rule() -> None:
    _, whole = field_rules(_grant(**{"$payload": "pseudonymise"}))
    assert whole is not None and whole.name == "pseudonymise" and whole.grant == "g"


def test_a_bad_line_names_its_path() -> None:
    with pytest.raises(FieldLineError) as caught:
        field_rules(_grant(**{"pos[]": {"coarsen": {"grid_m": 500, "lon": "lon"}}}))
    assert caught.value.path == "pos[]"


def test_aggregate_shadow_names_the_summarised_fields() -> None:
    shadow = aggregate_shadow("s", AggregateSpec(window=60, fields={"a.b": ["mean"]}))
    node = shadow.keys["a"].keys["b"]
    assert node.rule is not None and node.rule.name == AGGREGATE and node.rule.detail == "60 s"
    # Beside a grant that keeps ``a``, the summarised field stays: only its summary leaves.
    own, _ = field_rules(_grant(a="keep"))
    rel = Release(None)
    assert release_with({"a": {"b": 1, "c": 2}}, own, [shadow], rel) == {"a": {"c": 2}}
    assert rel.problems["a.b"].code == "summarised_elsewhere"
    assert rel.problems["a.b"].params == {"field": "a.b", "window": "60 s", "grant": "s"}
