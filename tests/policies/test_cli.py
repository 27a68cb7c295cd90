"""``einblick policy``: check, explain, describe, schema through argparse."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gateway.commands.policy import register
from policies.errors import PolicyError
from policies.examples import example_path


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="einblick")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_check_examples(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(example_path(n)) for n in ("bakery", "vans", "building")]
    assert run(["policy", "check", *files]) == 0
    out, err = capsys.readouterr()
    assert out.count(": ok: ") == 3 and "accepting the recipients" in err


def test_check_reports_errors_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = example_path("bakery").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        good.replace("recipient: oven-maker", "recipient: oven-maker\n    colour: red", 1),
        encoding="utf-8",
    )
    assert run(["policy", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "grants.0.colour: unknown key" in err
    assert run(["policy", "check", "--recipients", "logistics", str(example_path("bakery"))]) == 2
    assert "unknown recipient 'oven-maker'" in capsys.readouterr().err
    empty = tmp_path / "empty.yaml"
    empty.write_text(
        good.replace("      $payload: keep\n", "").replace("    fields:\n      $payload", ""),
        encoding="utf-8",
    )
    text = empty.read_text(encoding="utf-8").rstrip()
    if text.endswith("fields:"):
        empty.write_text(text[: -len("fields:")].rstrip() + "\n", encoding="utf-8")
    assert run(["policy", "check", str(empty)]) == 0
    assert "releases nothing" in capsys.readouterr().err


def test_check_finds_overlaps_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text(
        example_path("bakery")
        .read_text(encoding="utf-8")
        .replace("customer: baeckerei-schmidt", "customer: copy"),
        encoding="utf-8",
    )
    assert run(["policy", "check", str(example_path("bakery")), str(copy)]) == 2
    assert "overlaps" in capsys.readouterr().err


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "policy",
            "explain",
            str(example_path("vans")),
            "--topic",
            "owntracks/jjolie/van-01",
            "--message",
            '{"_type":"location","lat":52.195913,"lon":7.688245,"tid":"C1","tst":1699882482}',
            "--now",
            "2026-06-03T09:30:00Z",
            "--lang",
            "en",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "[logistics] altered" in out and "fleet/spedition-weber/van-01/position" in out
    assert "tid" in out and "jjolie" not in out.split("topic:")[1].split("\n")[0]
    with pytest.raises(PolicyError, match="--now"):
        run(
            [
                "policy",
                "explain",
                str(example_path("vans")),
                "--topic",
                "x",
                "--message",
                "{}",
                "--now",
                "yesterday",
            ]
        )


def test_describe_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "describe", str(example_path("bakery"))]) == 0
    assert capsys.readouterr().out.startswith("Wer bekommt was, und warum")
    assert run(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Einblick policy"


GRANTS = """einblick_policy: 1
customer: acme
name: Acme
language: en
devices:
  - id: van
    name: Van
    kind: van
    topics:
      - pattern: "fleet/van"
grants:
  - id: tracking
    recipient: logistics
    purpose: Tracking
    legal_basis: contract
    devices: [van]
    fields:
      "*": keep
  - id: driver-names
    recipient: logistics
    purpose: Driver names
    legal_basis: contract
    devices: [van]
    fields:
      driver.name: pseudonymise
"""


def test_check_refuses_grants_that_cannot_combine_at_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "acme.yaml"
    policy.write_text(GRANTS, encoding="utf-8")
    assert run(["policy", "check", str(policy)]) == 0
    assert "overlaps" not in capsys.readouterr().err  # they combine: no warning
    policy.write_text(GRANTS.replace('"*": keep', '"*": {round: 1}'), encoding="utf-8")
    assert run(["policy", "check", str(policy)]) == 2
    err = capsys.readouterr().err
    lines = GRANTS.splitlines()
    later, earlier = lines.index("  - id: driver-names") + 1, lines.index("  - id: tracking") + 1
    assert f"{policy}:{later}:" in err and f"(line {earlier})" in err
    assert "use the same kind in both" in err


def test_explain_shows_each_release_and_the_grant_whose_line_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "acme.yaml"
    policy.write_text(GRANTS, encoding="utf-8")
    message = '{"driver": {"name": "Hans Maier", "id": 17}, "speed": 42}'
    argv = ["policy", "explain", str(policy), "--topic", "fleet/van", "--message", message]
    assert run([*argv, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.count("[logistics] altered") == 2 and "Hans Maier" not in out
    assert "driver.name: altered (pseudonymise), by 'driver.name' of grant 'driver-names'" in out
    assert "(grant “driver-names”), the field left in that form" in out
