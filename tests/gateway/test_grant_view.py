"""The running gateway's grant view (the ``policies`` op behind "who gets what") lists what each
grant can send: an aggregate grant its summarised fields, a coarsened position both halves."""

from __future__ import annotations

from pathlib import Path

from gateway.operations.control import request
from tests.gateway.harness import running_gateway
from tests.tui.test_grant_fields import POLICY


async def test_the_policies_op_lists_aggregated_and_coarsened_fields(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"vans.yaml": POLICY}, [("vans", "van-1", "Van 1")]) as h:
        answer = await request(h.gateway.config.control_socket, "policies", customer="vans")
    (customer,) = answer["customers"]
    fields = {g["id"]: g["fields"] for g in customer["grants"]}
    assert fields == {"energy": ["battery"], "dispatch": ["pos.lat", "pos.lng", "speed"]}
