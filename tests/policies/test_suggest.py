"""``einblick policy suggest`` and the profile warnings of ``policy check``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.commands.policy import register
from policies.compiler import compile_policy
from policies.loader import load_policy_text
from policies.profiles import PROFILES, Personal, Treatment, profile
from policies.suggest import suggested_grant


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="einblick")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def policy_with(fields: dict[str, Any], profile_name: str = "owntracks", **grant: Any) -> str:
    doc = {
        "einblick_policy": 1,
        "customer": "familie-weber",
        "name": "Familie Weber",
        "devices": [
            {
                "id": "phone",
                "name": "Annas Handy",
                "kind": "tracker",
                "profile": profile_name,
                "topics": [{"pattern": "owntracks/{user}/{device}"}],
            }
        ],
        "grants": [
            {
                "id": "family-map",
                "recipient": "logistics",
                "purpose": "Family map",
                "legal_basis": "contract",
                "devices": ["phone"],
                "fields": fields,
                **grant,
            }
        ],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_suggest_prints_a_fields_block_that_loads_as_a_grant(
    name: str, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "suggest", "--profile", name, "--lang", lang]) == 0
    out = capsys.readouterr().out
    parsed = yaml.safe_load(out)
    fields = parsed["fields"] or {}
    assert fields == suggested_grant(name).fields
    # Pasted under a grant it loads and compiles.
    doc = load_policy_text(policy_with(fields, name))
    compile_policy(doc, {"logistics": "RouteOne"})
    p = profile(name)
    for f in p.fields:
        if f.path.startswith("$"):
            continue
        # Every field is shown once, listed or commented out, with its label and category.
        lines = [line for line in out.splitlines() if f.labels[lang] + " — " in line]
        assert any(f.path in line for line in lines), f.path
        if f.personal is Personal.DIRECT and f.treatment is not Treatment.KEEP:
            assert fields.get(f.path) != "keep", f.path
        if f.treatment is Treatment.WITHHOLD:
            assert f.path not in fields
    personal = "direkt personenbezogen" if lang == "de" else "direct personal data"
    if any(f.personal is Personal.DIRECT for f in p.fields):
        assert personal in out


def test_suggest_owntracks_in_german(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "suggest", "--profile", "owntracks", "--lang", "de"]) == 0
    out = capsys.readouterr().out
    assert "lat: {coarsen: {grid_m: 1000, lon: lon}}" in out
    assert "# lon: coarsened with lat" in out
    assert "tst: {truncate: minute}" in out
    assert "tid: pseudonymise" in out
    assert "# tag: withhold" in out and "Freitext" in out
    assert "Standort (Breitengrad) — Standort, direkt personenbezogen" in out
    assert "#   user: pseudonymise" in out  # topic levels: a hint for the grant's topic


def test_suggest_rejects_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["policy", "suggest", "--profile", "fitbit"])
    assert "invalid choice" in capsys.readouterr().err


def test_a_plain_text_body_is_a_grant_of_its_own() -> None:
    on_lwt = suggested_grant("tasmota", "tele/{topic}/LWT")
    assert on_lwt.fields == {"$payload": "keep"}
    assert on_lwt.topic_levels == {}  # {topic} in a grant's topic is the raw device topic
    assert "$topic.topic" in on_lwt.left_out
    assert suggested_grant("shelly_gen2", "{id}/online").topic_levels == {"id": "pseudonymise"}
    on_sensor = suggested_grant("tasmota", "tele/{topic}/SENSOR")
    assert "$payload" not in on_sensor.fields and "Time" in on_sensor.fields
    motion = suggested_grant("homeassistant", "homeassistant/binary_sensor/{object_id}/state")
    assert motion.fields == {}  # presence is aggregated, which a text body cannot be
    assert "aggregate" in motion.left_out["$payload"]


def test_check_warns_when_a_grant_keeps_direct_personal_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "weber.yaml"
    path.write_text(
        policy_with(
            {"lat": "keep", "lon": "keep", "iOS": "keep", "batt": "keep", "tst": "pseudonymise"},
            topic="family/{user}",
            topic_levels={"user": "keep"},
        ),
        encoding="utf-8",
    )
    assert run(["policy", "check", str(path)]) == 0  # warnings, not errors
    out, err = capsys.readouterr()
    assert ": ok: familie-weber" in out
    warned = [line for line in err.splitlines() if "warning:" in line]
    for released in ("'lat'", "'lon'", "'iOS.deviceIdentifierForVendor'", "'iOS.locale'"):
        assert any(f"releases {released}" in w for w in warned), released
    assert any("'$topic.user'" in w for w in warned)
    assert not any("'batt'" in w or "'tst'" in w for w in warned)
    assert all(w.startswith(f"{path}:") for w in warned)
    assert "suggested: coarsen 1000 m" in err


def test_check_is_quiet_for_the_suggested_grant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suggestion = suggested_grant("owntracks", "owntracks/{user}/{device}")
    path = tmp_path / "weber.yaml"
    path.write_text(
        policy_with(suggestion.fields, topic="family/{user}", topic_levels=suggestion.topic_levels),
        encoding="utf-8",
    )
    assert run(["policy", "check", str(path)]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_check_warns_about_an_unknown_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "weber.yaml"
    path.write_text(policy_with({"batt": "keep"}, "fitbit"), encoding="utf-8")
    assert run(["policy", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "payload profile 'fitbit'" in err and "owntracks" in err


def test_a_capture_named_like_a_builtin_placeholder_is_not_offered_for_the_topic() -> None:
    # owntracks/{user}/{device}: in a grant's topic {device} is the policy's device id.
    suggestion = suggested_grant("owntracks", "owntracks/{user}/{device}")
    assert suggestion.topic_levels == {"user": "pseudonymise"}
    assert "another name" in suggestion.left_out["$topic.device"]
