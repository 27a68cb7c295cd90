"""Treatment specs and the path and duration syntax of a policy's field lines."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from policies.treatment_specs import (
    DEFAULT_MIN_COUNT,
    AggregateSpec,
    CoarsenSpec,
    RoundSpec,
    Treatment,
    TruncateSpec,
    check_path,
    parse_duration,
)

TREATMENT: TypeAdapter[Treatment] = TypeAdapter(Treatment)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("60s", 60.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0), (30, 30.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "-1m", "5 minutes", True, "", None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("path", ["a", "a.b", "*.t", "r[].v", "m[][]", "$payload"])
def test_good_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", ["", "a..b", "a.[]", "a.b*", "a[0]", "$x"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        check_path(path)


def test_treatments_are_told_apart_by_their_key() -> None:
    assert TREATMENT.validate_python("keep") == "keep"
    assert TREATMENT.validate_python({"round": 0.5}) == RoundSpec(round=0.5)
    assert isinstance(TREATMENT.validate_python({"truncate": "hour"}), TruncateSpec)
    coarsen = TREATMENT.validate_python({"coarsen": {"grid_m": 500, "lon": "lng"}})
    assert isinstance(coarsen, CoarsenSpec) and coarsen.coarsen.lon == "lng"
    for bad in ("shred", {"round": 0}, {"coarsen": {"grid_m": 5, "lon": "x"}}, {"a": 1, "b": 2}):
        with pytest.raises(ValidationError):
            TREATMENT.validate_python(bad)


def test_aggregate_spec() -> None:
    spec = AggregateSpec.model_validate({"window": "15m", "fields": {"ENERGY.Power": ["mean"]}})
    assert spec.window == 900.0 and spec.min_count == DEFAULT_MIN_COUNT == 3
    for fields in ({"*": ["mean"]}, {"a[]": ["max"]}, {"a": []}, {}):
        with pytest.raises(ValidationError):
            AggregateSpec.model_validate({"window": "1m", "fields": fields})
