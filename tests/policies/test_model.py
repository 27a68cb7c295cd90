"""The policy document's models: each invariant refused at its file:line, and the rights a
customer has over a grant by its legal basis."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from policies.decision import LegalBasis
from policies.errors import PolicyError
from policies.loader import load_policy_text
from policies.model import (
    OBJECTABLE,
    ConsentRecord,
    GrantSpec,
    TopicSpec,
    Validity,
    allowed_actions,
    default_action,
    policy_schema,
)

from .conftest import policy_dict


def _error(*grants: dict[str, Any], **top: Any) -> PolicyError:
    text = yaml.safe_dump(policy_dict(*grants, **top), sort_keys=False)
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "acme.yaml")
    return caught.value


def _grant_line(error: PolicyError, index: int = 0) -> None:
    """The error points into the grant's lines (its own line or one of its keys)."""
    assert error.path == "acme.yaml" and error.line is not None
    assert str(error).startswith(f"acme.yaml:{error.line}:")
    assert error.key is not None and error.key.startswith(f"grants.{index}")


CONSENT = {"given_by": "Anna", "given_at": "2026-01-05T10:00:00Z"}


@pytest.mark.parametrize(
    ("grant", "fragment"),
    [
        ({"legal_basis": "consent", "fields": {"t": "keep"}}, "needs a consent record"),
        ({"payload": "opaque", "fields": {"t": "keep"}}, "payload: opaque"),
        (
            {"aggregate": {"window": "1m", "fields": {"p": ["mean"]}}, "rate_limit": "1m"},
            "aggregate sends only the aggregates",
        ),
        ({"fields": {"$payload": "keep", "t": "keep"}}, "must be the only field"),
        ({"fields": {"driver": "keep", "driver.name": "keep"}}, "already covers"),
        ({"fields": {"t": "keep"}, "hours": ["6-22"]}, "HH:MM-HH:MM"),
        ({"fields": {"t": "keep"}, "hours": []}, "at least one window"),
        ({"fields": {"t": {"truncate": "minute"}}, "release": "end_of_unit"}, "end_of_unit"),
        ({"fields": {"t": "keep"}, "topic": "up/+/x"}, "without wildcards"),
        ({"fields": {"t": "keep"}, "devices": [], "kinds": []}, "name the devices"),
        ({"fields": {"t": "keep"}, "id": "Bad_Id"}, "lower-case"),
        ({"fields": {"a..b": "keep"}}, "bad path"),
        ({"fields": {"t": "shred"}}, "expected keep, pseudonymise"),
        ({"fields": {"t": "keep"}, "valid": {"from": "2026-01-01T00:00:00"}}, "timezone"),
        (
            {
                "fields": {"t": "keep"},
                "valid": {"from": "2027-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            },
            "'until' must be after 'from'",
        ),
    ],
)
def test_grant_invariants_are_refused_at_the_grants_line(
    grant: dict[str, Any], fragment: str
) -> None:
    error = _error(grant)
    assert fragment in str(error), str(error)
    _grant_line(error)


def test_document_invariants() -> None:
    assert "unknown timezone 'Mars/Olympus'" in str(
        _error({"fields": {"t": "keep"}}, timezone="Mars/Olympus")
    )
    assert "lower-case" in str(_error({"fields": {"t": "keep"}}, customer="ACME"))
    assert "de" in str(_error({"fields": {"t": "keep"}}, language="fr"))


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("bakery/oven-1/telemetry", True),
        ("owntracks/{driver}/van-01", True),
        ("v3/{app}@{tenant}/devices/{device}/up", True),
        ("a/#", True),
        ("a/#/b", False),
        ("$SYS/x", False),
        ("a/b+/c", False),
        ("a/{x}{y}", False),
        ("a/{x}/b/{x}", False),
    ],
)
def test_topic_patterns(pattern: str, ok: bool) -> None:
    if ok:
        assert TopicSpec(pattern=pattern).pattern == pattern
    else:
        with pytest.raises(ValidationError):
            TopicSpec(pattern=pattern)


def test_release_unit_is_the_coarsest_truncation() -> None:
    base: dict[str, Any] = {
        "id": "g",
        "recipient": "r",
        "purpose": {"de": "Zweck", "en": "Purpose"},
        "legal_basis": "contract",
        "devices": "*",
    }
    grant = GrantSpec.model_validate(
        {
            **base,
            "fields": {"a": {"truncate": "hour"}, "b": {"truncate": "day"}},
            "release": "end_of_unit",
        }
    )
    assert grant.release_unit == "day"
    assert GrantSpec.model_validate({**base, "fields": {"a": "keep"}}).release_unit is None
    assert grant.purpose_text() == {"de": "Zweck", "en": "Purpose"}
    plain = GrantSpec.model_validate({**base, "purpose": "Wartung", "fields": {"a": "keep"}})
    assert plain.purpose_text() == {"de": "Wartung", "en": "Wartung"}


def test_models_are_frozen_and_strict() -> None:
    record = ConsentRecord.model_validate(CONSENT)
    with pytest.raises(ValidationError):
        record.given_by = "Bob"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Validity.model_validate({"from": "2026-01-01T00:00:00Z", "till": "2027-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("basis", "actions"),
    [
        (LegalBasis.CONSENT, ("withdraw",)),
        (LegalBasis.LEGITIMATE_INTERESTS, ("object", "restrict")),
        (LegalBasis.PUBLIC_TASK, ("object", "restrict")),
        (LegalBasis.CONTRACT, ("restrict",)),
        (LegalBasis.LEGAL_OBLIGATION, ("restrict",)),
        (LegalBasis.VITAL_INTERESTS, ("restrict",)),
    ],
)
def test_rights_follow_the_legal_basis(basis: LegalBasis, actions: tuple[str, ...]) -> None:
    # GDPR Art. 7(3) withdraw consent; Art. 21(1) object, only to (e) and (f); Art. 18 restrict.
    assert allowed_actions(basis) == actions
    assert allowed_actions(basis.value) == actions
    assert default_action(basis) == actions[0]
    assert (basis in OBJECTABLE) == ("object" in actions)


def test_every_basis_has_its_actions() -> None:
    assert set(OBJECTABLE) == {LegalBasis.LEGITIMATE_INTERESTS, LegalBasis.PUBLIC_TASK}
    for basis in LegalBasis:
        assert allowed_actions(basis), basis
    with pytest.raises(ValueError):
        allowed_actions("whim")


def test_schema_names_grants_and_treatments() -> None:
    schema = policy_schema()
    assert schema["title"] == "Einblick policy"
    assert "GrantSpec" in schema["$defs"] and "RoundSpec" in schema["$defs"]
