"""The grant view ("who gets what") lists what each grant can send, from the policy itself."""

from __future__ import annotations

from pathlib import Path

from tui.model import Names
from tui.policy_files import _policies_from_files

POLICY = """
einblick_policy: 1
customer: vans
name: Fahrdienst
language: de
devices:
  - id: van-1
    name: Van 1
    kind: van
    topics:
      - pattern: "vans/van-1"
        stream: telemetry
grants:
  - id: energy
    recipient: energy-provider
    purpose: Energie
    legal_basis: contract
    devices: [van-1]
    aggregate: {window: 5m, fields: {battery: [mean]}}
  - id: dispatch
    recipient: logistics
    purpose: Disposition
    legal_basis: contract
    devices: [van-1]
    fields:
      pos.lat: {coarsen: {grid_m: 1000, lon: lng}}
      speed: keep
"""


def test_an_aggregate_grant_lists_its_fields_and_a_coarsened_position_both_halves(
    tmp_path: Path,
) -> None:
    (tmp_path / "vans.yaml").write_text(POLICY, encoding="utf-8")
    (policy,) = _policies_from_files(tmp_path, Names())
    grants = {g.id: g for g in policy.grants}
    assert grants["energy"].fields == ("battery",)  # not "all fields unchanged"
    assert grants["dispatch"].fields == ("pos.lat", "pos.lng", "speed")
