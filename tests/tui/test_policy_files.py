"""Policies and names from the policy files when the gateway is not running."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.operations.control_model import CustomerPolicies, PoliciesReply, grant_info
from gateway.rights.consent_events import held_grants, record
from policies.compiler import compile_policy
from policies.loader import load_policy
from tests.log.conftest import fresh_db
from tests.tui.test_grant_fields import POLICY
from tui.local import LocalSource
from tui.model import CustomerPolicy, Names
from tui.policy_files import _merge_names, _names_from_files, _policies_from_files

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)  # what grants' dates are judged at


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
                grants=[grant_info(g, recipients, now=NOW) for g in policy.grants],
                error=None,
            )
        ]
    )
    [live] = PoliciesReply.model_validate(orjson.loads(sent.model_dump_json())).customers
    [offline] = _policies_from_files(tmp_path, Names(recipients=recipients))
    assert CustomerPolicy.from_reply(live).grants == offline.grants
    assert [g.recipient_name for g in offline.grants] == ["Stadtwerke", "Spedition Weber"]


async def test_without_a_gateway_a_grant_held_back_in_the_log_is_shown_held(
    tmp_path: Path,
) -> None:
    # The log records an objection to 'energy' and a withdrawal, then a giving back, of
    # 'dispatch': read without a gateway, 'energy' shows as held (by the objection) and
    # 'dispatch' as sending — as the running gateway would show them, never "✓" for a hold.
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "vans.yaml").write_text(POLICY, encoding="utf-8")
    db = tmp_path / "einblick.db"
    conn = fresh_db(db)
    at = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    record(conn, "vans", "energy", holds=True, at=at, by="Kim", entry_seq=1, right="objection")
    record(conn, "vans", "dispatch", holds=True, at=at, by="Kim", entry_seq=2, right="consent")
    record(conn, "vans", "dispatch", holds=False, at=at, by="Kim", entry_seq=3, right="consent")
    conn.close()
    source = LocalSource(db, policies_dir=policies, control_socket=tmp_path / "none.sock")
    try:
        [vans], live = await source.policies()
    finally:
        await source.close()
    assert live is False
    shown = {g.id: (g.withdrawn, g.held_by) for g in vans.grants}
    assert shown == {"energy": (True, "objection"), "dispatch": (False, None)}
    # No log yet (a box that never ran): nothing is held, nothing fails.
    assert held_grants(tmp_path / "absent.db") == {}
