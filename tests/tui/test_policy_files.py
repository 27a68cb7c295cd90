"""Policies and names from the policy files when the gateway is not running."""

from __future__ import annotations

from pathlib import Path

from tests.tui.test_grant_fields import POLICY
from tui.model import Names
from tui.policy_files import _merge_names, _names_from_files, _policies_from_files


def test_a_broken_file_is_shown_with_its_error_not_left_out(tmp_path: Path) -> None:
    (tmp_path / "a-vans.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "b-broken.yaml").write_text("einblick_policy: 1\ncustomer: [", encoding="utf-8")
    good, broken = _policies_from_files(tmp_path, Names())
    assert (good.customer, good.name, good.error) == ("vans", "Fahrdienst", None)
    assert [g.id for g in good.grants] == ["energy", "dispatch"]
    assert broken.error and "b-broken.yaml" in broken.customer


def test_names_come_from_the_files_and_configured_names_win(tmp_path: Path) -> None:
    (tmp_path / "vans.yaml").write_text(POLICY, encoding="utf-8")
    from_files = _names_from_files(tmp_path)
    assert from_files.customers == {"vans": "Fahrdienst"}
    assert from_files.devices["van-1"] == "Van 1"
    merged = _merge_names(Names(devices={"van-1": "Lieferwagen"}), from_files)
    assert merged.devices["van-1"] == "Lieferwagen" and merged.customers == {"vans": "Fahrdienst"}
