"""Warnings for what is legal but probably wrong, each at its file:line."""

from __future__ import annotations

from typing import Any

import yaml

from policies.lint import PolicyWarning, lint

from .conftest import compile_text, policy_dict


def _text(*grants: dict[str, Any]) -> str:
    return yaml.safe_dump(policy_dict(*grants), sort_keys=False)


def test_empty_grants_warn_at_their_line() -> None:
    text = _text({"fields": {}}, {"recipient": "r2", "fields": {"t": "keep"}})
    warnings = lint(compile_text(text))
    lines = text.splitlines()
    assert (
        PolicyWarning(
            "<string>",
            lines.index("- id: g1") + 1,
            "grant 'g1' releases nothing (no fields, payload or aggregate)",
        )
        in warnings
    )
    assert len(warnings) == 1
    assert str(warnings[0]).startswith("<string>:")


def test_truncation_to_the_hour_warns_at_the_field_line() -> None:
    text = _text({"fields": {"ts": {"truncate": "hour"}}})
    (warning,) = lint(compile_text(text))
    assert warning.line == text.splitlines().index("    ts:") + 1
    assert "aggregate with window: 1h" in warning.message


def test_overlapping_grants_are_not_warned_about() -> None:
    text = _text({"fields": {"*": "keep"}}, {"fields": {"driver.name": "pseudonymise"}})
    assert lint(compile_text(text)) == []
