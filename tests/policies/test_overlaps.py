"""Grants for one recipient that cannot be combined order-free are refused, at both lines."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policies.errors import PolicyError
from policies.overlaps import paths_meet

from .conftest import compile_text, policy_dict


def _text(*grants: dict[str, Any]) -> str:
    return yaml.safe_dump(policy_dict(*grants), sort_keys=False)


def _line(text: str, grant_id: str) -> int:
    return text.splitlines().index(f"- id: {grant_id}") + 1


@pytest.mark.parametrize(
    ("first", "second", "fragment"),
    [
        (
            {"fields": {"t": "pseudonymise"}},
            {"fields": {"t": {"round": 1}}},
            "says 't': pseudonymise",
        ),
        (
            {"fields": {"*": {"truncate": "minute"}}},
            {"fields": {"ts": {"round": 60}}},
            "neither protects more than the other",
        ),
        (
            {"fields": {"lat": {"coarsen": {"grid_m": 500, "lon": "lon"}}}},
            {"fields": {"lon": {"round": 0.1}}},
            "'lon': coarsen to 500 m",
        ),
        (
            {"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}},
            {"aggregate": {"window": "5m", "fields": {"p": ["mean"]}}},
            "both summarise 'p', differently",
        ),
        (
            {"topic": "up/{user}", "topic_levels": {"user": "keep"}, "fields": {"t": "keep"}},
            {
                "topic": "up2/{user}",
                "topic_levels": {"user": "pseudonymise"},
                "fields": {"t": "keep"},
            },
            "say pseudonymise in both",
        ),
        (
            {"topic": "up/{topic}", "fields": {"t": "keep"}},
            {
                "topic": "up2/{user}",
                "topic_levels": {"user": "pseudonymise"},
                "fields": {"t": "keep"},
            },
            "passes the device's topic on unchanged",
        ),
        (
            {"payload": "opaque"},
            {"fields": {"t": {"round": 1}}},
            "releases the body whole",
        ),
        (
            {"fields": {"$payload": "keep"}},
            {"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}},
            "releases the body whole",
        ),
    ],
)
def test_unorderable_overlaps_are_refused_with_both_lines(
    first: dict[str, Any], second: dict[str, Any], fragment: str
) -> None:
    for order in ((first, second), (second, first)):
        text = _text(*order)
        with pytest.raises(PolicyError) as caught:
            compile_text(text)
        error = caught.value
        message = str(error)
        assert fragment in message, message
        assert error.line == _line(text, "g2")  # the later grant: where the conflict arises
        assert f"(line {_line(text, 'g1')})" in message
        assert "recipient 'r1' dev/status, dev/telemetry: " in message
        assert message.startswith("<string>:")


@pytest.mark.parametrize(
    "second",
    [
        {"recipient": "r2", "fields": {"t": {"round": 1}}},  # another recipient
        {"streams": ["status"], "fields": {"t": {"round": 1}}, "devices": ["dev"]},
        {"fields": {"t": "keep"}},  # keep is below every treatment
        {"fields": {"t": {"round": 5}}},  # same kind: the coarser applies
        {"fields": {"u": {"round": 1}}},  # different fields
        {"aggregate": {"window": "1m", "fields": {"t": ["mean"]}}},  # above every treatment
    ],
)
def test_overlaps_that_combine_are_accepted(second: dict[str, Any]) -> None:
    first = {"fields": {"t": "pseudonymise"}, "streams": ["telemetry"]}
    if second.get("fields", {}).get("t") == {"round": 5} or "u" in second.get("fields", {}):
        first = {"fields": {"t": {"round": 1}}, "streams": ["telemetry"]}
    compile_text(_text(first, second))
    compile_text(_text(second, first))


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [
        ("a.b", "a.b", True),
        ("*", "a.b", True),
        ("a", "a.b.c", True),
        ("*.name", "driver", True),
        ("a.b", "a.c", False),
        ("a[]", "a.b", False),
        ("a[].b", "*[].b", True),
        ("$payload", "x", True),
    ],
)
def test_paths_meet(a: str, b: str, meet: bool) -> None:
    assert paths_meet(a, b) is meet
    assert paths_meet(b, a) is meet
