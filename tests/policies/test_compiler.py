"""Compiling: recipients, templates and captures are checked with file:line; lint warnings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policies.compiler import compile_policy
from policies.errors import PolicyError
from policies.lint import lint
from policies.loader import load_policy_text

from .conftest import compile_text, policy_dict


def text(*grants: dict[str, Any]) -> str:
    return yaml.safe_dump(policy_dict(*grants), sort_keys=False)


def test_unknown_recipient_points_at_the_grant() -> None:
    source = text({"recipient": "nobody", "fields": {"t": "keep"}})
    with pytest.raises(PolicyError, match="unknown recipient 'nobody'") as caught:
        compile_policy(load_policy_text(source, "acme.yaml"), {"r1": "R1"})
    assert caught.value.line == source.splitlines().index("  recipient: nobody") + 1
    assert caught.value.key == "grants.0.recipient"
    assert str(caught.value).startswith("acme.yaml:")


@pytest.mark.parametrize(
    ("grant", "fragment"),
    [
        ({"topic": "x/{user}", "fields": {"t": "keep"}}, "say how it may leave"),
        ({"topic": "x/{phone}", "topic_levels": {"phone": "keep"}}, "not captured"),
        ({"topic": "x/{device}", "topic_levels": {"user": "keep"}}, "not used in the topic"),
        ({"streams": ["video"], "fields": {"t": "keep"}}, "video"),
        ({"fields": {"lat": {"coarsen": {"grid_m": 1000, "lon": "lat"}}}}, "sibling"),
        (
            {"fields": {"lat": {"coarsen": {"grid_m": 1000, "lon": "lon"}}, "lon": "keep"}},
            "named twice",
        ),
        ({"topic": "x/{bad-name}", "fields": {"t": "keep"}}, "placeholder"),
    ],
)
def test_compile_errors(grant: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment) as caught:
        compile_text(text(grant))
    assert caught.value.line is not None


def test_captured_levels_can_be_released() -> None:
    policy = compile_text(
        text(
            {
                "topic": "up/{device}/{user}",
                "topic_levels": {"user": "pseudonymise"},
                "fields": {"t": "keep"},
            }
        )
    )
    (grant,) = policy.grants
    assert grant.needs_key and grant.template.captures == {"user"}


def test_lint_warns_about_empty_grants_and_not_about_overlaps() -> None:
    policy = compile_text(text({"fields": {"t": "keep"}}, {"fields": {}}, {"recipient": "r2"}))
    warnings = [str(w) for w in lint(policy)]
    assert any("'g2' releases nothing" in w for w in warnings)
    assert any("'g3' releases nothing" in w for w in warnings)
    # Overlapping grants combine order-free (policies.combine): nothing to warn about.
    assert not any("overlaps" in w for w in warnings)
    assert all(": warning: " in w for w in warnings)


def test_compiled_policy_exposes_the_contract() -> None:
    policy = compile_text(
        text(
            {
                "legal_basis": "consent",
                "consent": {"given_by": "Anna", "given_at": "2026-01-05T10:00:00Z"},
                "fields": {"t": "keep"},
            }
        )
    )
    grant = policy.grants[0]
    assert (policy.customer, policy.display_name, policy.language) == ("acme", "Acme", "en")
    assert len(policy.version) == 64 and policy.source == "<string>"
    assert grant.id == "g1" and grant.recipient == "r1" and grant.recipient_name == "R1"
    assert grant.purpose == {"de": "Wartung", "en": "Maintenance"}
    assert grant.consent is not None and grant.consent.given_by == "Anna"
    assert [d.id for d in policy.devices] == ["dev"]
