"""The running gateway's grant view (the ``policies`` op behind "who gets what") lists what each
grant can send: an aggregate grant its summarised fields, a coarsened position both halves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.operations.control import request
from tests.gateway.harness import running_gateway
from tests.gateway.test_clock import EXPIRING, UNTIL
from tests.gateway.test_report import DEVICES
from tests.tui.test_grant_fields import POLICY


async def test_the_policies_op_lists_aggregated_and_coarsened_fields(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"vans.yaml": POLICY}, [("vans", "van-1", "Van 1")]) as h:
        answer = await request(h.gateway.config.control_socket, "policies", customer="vans")
    (customer,) = answer["customers"]
    fields = {g["id"]: g["fields"] for g in customer["grants"]}
    assert fields == {"energy": ["battery"], "dispatch": ["pos.lat", "pos.lng", "speed"]}


async def test_the_policies_op_says_a_grant_is_not_in_force_at_the_gateways_time(
    tmp_path: Path,
) -> None:
    """A consent that ran out: every message under it is withheld ("expired"), and "who gets
    what" says so, judged at the gateway's own clock (never before its log's newest entry)."""
    after = UNTIL + timedelta(days=1)
    async with running_gateway(tmp_path, {"mueller.yaml": EXPIRING}, DEVICES[:1]) as h:
        h.gateway.clock.wall = lambda: after
        answer = await request(
            h.gateway.config.control_socket, "policies", customer="mueller-soehne"
        )
        h.gateway.clock.wall = lambda: UNTIL - timedelta(days=1)  # behind: the log's time holds
        behind = await request(
            h.gateway.config.control_socket, "policies", customer="mueller-soehne"
        )
    (customer,) = answer["customers"]
    assert {g["id"]: g["lapsed"] for g in customer["grants"]} == {
        "energy-advice": "consent_expired"
    }
    (customer,) = behind["customers"]
    assert customer["grants"][0]["lapsed"] == "consent_expired"
