"""``einblick policy check`` warns, with file:line, where a policy releases more than it seems:
a kept object or ``*`` over a personal field, ``{topic}`` with personal levels, a truncation
coarser than delivery. A more specific rule that treats the field silences the warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli import run

HEAD = """einblick_policy: 1
customer: vans
name: Fahrdienst
language: en
devices:
  - id: tracker
    name: Tracker
    kind: phone
    profile: owntracks
    topics:
      - pattern: "owntracks/{user}/{device}"
        stream: location
grants:
  - id: fleet
    recipient: logistics
    purpose: Fleet
    legal_basis: contract
    devices: [tracker]
"""


def _check(tmp_path: Path, grant: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "vans.yaml"
    path.write_text(HEAD + grant, encoding="utf-8")
    assert run(["policy", "check", str(path)]) == 0
    return capsys.readouterr().err


def test_star_keep_over_a_personal_field_warns_unless_a_deeper_rule_treats_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _check(tmp_path, '    fields:\n      "*": keep\n', capsys)
    assert "vans.yaml:14: warning: grant 'fleet' releases 'lat'" in err
    assert "via '*'" in err
    # A Wi-Fi access point's MAC (BSSID) is mapped publicly: it locates the phone.
    assert "releases 'BSSID' (Wi-Fi access point MAC address (locates the phone)" in err
    treated = '    fields:\n      "*": keep\n      lat: {coarsen: {grid_m: 1000, lon: lon}}\n'
    err = _check(tmp_path, treated, capsys)
    assert "releases 'lat'" not in err and "releases 'lon'" not in err
    assert "releases 'tid'" in err  # still kept by *, and personal


def test_raw_topic_with_personal_levels_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _check(tmp_path, '    topic: "fleet/{topic}"\n    fields:\n      batt: keep\n', capsys)
    assert "vans.yaml:19: warning: grant 'fleet' uses {topic}" in err
    assert "{user}, {device}" in err


def test_truncation_coarser_than_delivery_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _check(tmp_path, "    fields:\n      tst: {truncate: hour}\n", capsys)
    assert "vans.yaml:20: warning: grant 'fleet' truncates 'tst' to the hour" in err
    assert "learns the exact time from the delivery" in err
    err = _check(tmp_path, "    fields:\n      tst: {truncate: minute}\n", capsys)
    assert "truncates" not in err
