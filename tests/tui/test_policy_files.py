"""Policies and names from the policy files when the gateway is not running."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.operations.control_model import CustomerPolicies, PoliciesReply, grant_info
from policies.compiler import compile_policy
from policies.loader import load_policy
from tests.tui.test_grant_fields import POLICY
from tui.model import CustomerPolicy, Names
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


def test_the_files_give_the_same_grant_views_as_the_running_gateways_reply(tmp_path: Path) -> None:
    # One builder: the gateway's policies reply, read back from its JSON line, and the policy
    # file read without a gateway both become GrantView through GrantInfo.
    (tmp_path / "vans.yaml").write_text(POLICY, encoding="utf-8")
    recipients = {"energy-provider": "Stadtwerke", "logistics": "Spedition Weber"}
    policy = compile_policy(load_policy(tmp_path / "vans.yaml"), recipients)
    sent = PoliciesReply(
        customers=[
            CustomerPolicies(
                customer=policy.customer,
                name=policy.name,
                grants=[grant_info(g, recipients) for g in policy.grants],
                error=None,
            )
        ]
    )
    [live] = PoliciesReply.model_validate(orjson.loads(sent.model_dump_json())).customers
    [offline] = _policies_from_files(tmp_path, Names(recipients=recipients))
    assert CustomerPolicy.from_reply(live).grants == offline.grants
    assert [g.recipient_name for g in offline.grants] == ["Stadtwerke", "Spedition Weber"]
