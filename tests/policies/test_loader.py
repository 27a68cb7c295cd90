"""Loading: good files load; every bad file gives one PolicyError at file:line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policies.errors import PolicyError
from policies.loader import MAX_POLICY_BYTES, load_policy, load_policy_text
from policies.model import policy_schema

from .conftest import policy_dict

GOOD = yaml.safe_dump(policy_dict({"fields": {"t": "keep"}}), sort_keys=False)


def test_good_policy_loads_with_version_and_marks() -> None:
    doc = load_policy_text(GOOD, "acme.yaml")
    assert doc.customer == "acme" and doc.source == "acme.yaml"
    assert doc.locate(("grants", 0, "recipient"))[0] is not None


def error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    return caught.value


BAD: list[tuple[str, str, str, int | None, str | None]] = [
    # (name, text, message fragment, line, key)
    ("invalid yaml", "einblick_policy: 1\ncustomer: [acme\n", "invalid YAML", 3, None),
    ("not a mapping", "- 1\n- 2\n", "expected a mapping", 1, None),
    ("empty", "", "empty", None, None),
    (
        "wrong version",
        GOOD.replace("einblick_policy: 1", "einblick_policy: 2"),
        "",
        1,
        "einblick_policy",
    ),
    ("unknown top key", GOOD + "colour: blue\n", "unknown key", None, "colour"),
    (
        "unknown grant key",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  recipent: r2"),
        "unknown key",
        None,
        "grants.0.recipent",
    ),
    ("wrong type", GOOD.replace("- id: dev", "- id: 17"), "string", None, "devices.0.id"),
    ("bad id", GOOD.replace("customer: acme", "customer: ACME Corp"), "lower-case", 2, "customer"),
    (
        "bad treatment",
        GOOD.replace("t: keep", "t: hide"),
        "expected keep, pseudonymise",
        None,
        "grants.0.fields.t",
    ),
    ("bad round", GOOD.replace("t: keep", "t: {round: -1}"), "greater than 0", None, None),
    ("bad truncate", GOOD.replace("t: keep", "t: {truncate: week}"), "", None, None),
    ("bad path", GOOD.replace("t: keep", "a..b: keep"), "segment", None, "grants.0.fields"),
    (
        "overlapping paths",
        GOOD.replace("t: keep", "a: keep\n    a.b: keep"),
        "already covers",
        None,
        None,
    ),
    (
        "payload not alone",
        GOOD.replace("t: keep", "$payload: keep\n    x: keep"),
        "only field",
        None,
        None,
    ),
    (
        "consent without record",
        GOOD.replace("legal_basis: contract", "legal_basis: consent"),
        "consent record",
        None,
        "grants.0",
    ),
    (
        "bad basis",
        GOOD.replace("legal_basis: contract", "legal_basis: because"),
        "",
        None,
        "grants.0.legal_basis",
    ),
    (
        "naive time",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  valid: {until: 2027-01-01T00:00:00}"),
        "timezone",
        None,
        None,
    ),
    (
        "bad hours",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  hours: ['6-22']"),
        "HH:MM",
        None,
        None,
    ),
    (
        "bad duration",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  rate_limit: soon"),
        "duration",
        None,
        None,
    ),
    (
        "duplicate grant id",
        GOOD.replace(
            "grants:\n",
            "grants:\n- id: g1\n  recipient: r1\n"
            "  purpose: x\n  legal_basis: contract\n  devices: [dev]\n",
        ),
        "used twice",
        None,
        "grants.1.id",
    ),
    (
        "unknown device",
        GOOD.replace("  devices:\n  - dev", "  devices:\n  - oven"),
        "no device 'oven'",
        None,
        "grants.0.devices.0",
    ),
    ("no devices named", GOOD.replace("  devices:\n  - dev\n", ""), "name the devices", None, None),
    (
        "condition bound left empty",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  when: [{field: speed, above: null}]"),
        "above needs a finite number (found nothing)",
        None,
        "grants.0.when.0",
    ),
    (
        "condition bound not a number",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  when: [{field: speed, below: .nan}]"),
        "below needs a finite number (found nan)",
        None,
        "grants.0.when.0",
    ),
    (
        "condition compared with not a number",
        GOOD.replace(
            "  recipient: r1", "  recipient: r1\n  when: [{field: speed, not_equals: .nan}]"
        ),
        "not_equals needs a finite number, a text or true/false (found nan)",
        None,
        "grants.0.when.0",
    ),
    (
        "condition equal to not a number",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  when: [{field: speed, equals: .NaN}]"),
        "equals needs a finite number, a text or true/false (found nan)",
        None,
        "grants.0.when.0",
    ),
    (
        "condition equal to infinity",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  when: [{field: speed, equals: -.inf}]"),
        "equals needs a finite number, a text or true/false (found -inf)",
        None,
        "grants.0.when.0",
    ),
    ("bad pattern", GOOD.replace("acme/dev/{user}/status", "acme/de+v"), "whole level", None, None),
    ("bad timezone", GOOD + "timezone: Mars/Olympus\n", "unknown timezone", None, "timezone"),
    (
        "opaque with fields",
        GOOD.replace("  recipient: r1", "  recipient: r1\n  payload: opaque"),
        "opaque",
        None,
        None,
    ),
]


@pytest.mark.parametrize(("name", "text", "fragment", "line", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_policy_gives_one_clear_error(
    name: str, text: str, fragment: str, line: int | None, key: str | None
) -> None:
    exc = error(text)
    assert fragment in exc.message
    assert str(exc).startswith("p.yaml")
    if line is not None:
        assert exc.line == line
    if key is not None:
        assert exc.key == key
    if exc.key and exc.key.startswith("grants.0"):
        assert exc.line is not None and exc.line > 10  # points into the grant, not the top


def test_unknown_key_points_at_its_line() -> None:
    text = GOOD.replace("  recipient: r1", "  recipient: r1\n  recipent: r2")
    exc = error(text)
    assert exc.line == text.splitlines().index("  recipent: r2") + 1
    assert exc.column == 3


def test_aliases_are_refused() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    exc = error(laughs)
    assert "aliases" in exc.message and exc.line == 2


def test_deep_nesting_is_refused() -> None:
    exc = error("a: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested deeper" in exc.message


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(PolicyError, match="must be under") as caught:
        load_policy(big)
    assert caught.value.path == str(big)
    with pytest.raises(PolicyError, match="must be under"):
        load_policy_text("#" * (MAX_POLICY_BYTES + 1))


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)


def test_version_is_the_file_hash(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "acme.yaml"
    path.write_text(GOOD, encoding="utf-8")
    doc = load_policy(path)
    assert doc._sha256 == hashlib.sha256(GOOD.encode()).hexdigest()


def test_schema_describes_the_document() -> None:
    schema = policy_schema()
    assert schema["title"] == "Einblick policy"
    assert "grants" in schema["properties"]
    assert "GrantSpec" in schema["$defs"]
