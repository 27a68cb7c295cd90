"""The portal's requests to the running gateway: the customer's grants with the actions their
basis allows (and only that customer's), and a right exercised through the typed op — the signed
receipt and record the first time, the earlier entry and nothing written the second."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.operations.control import GatewayNotRunning
from gateway.operations.portal import actions
from tests.gateway.harness import running_gateway
from tests.portal.site import CUSTOMER, OTHER, OTHER_POLICY, POLICY


async def test_grants_and_a_right_exercised_twice(tmp_path: Path) -> None:
    async with running_gateway(
        tmp_path,
        {"berg.yaml": POLICY, "sonne.yaml": OTHER_POLICY},
        [(CUSTOMER, "room-1", "Meeting room"), (OTHER, "stall-geheim-7", "Stall")],
    ) as harness:
        socket = harness.gateway.config.control_socket
        grants = {g.id: g for g in await actions.grants(socket, CUSTOMER)}
        assert set(grants) == {"demand-heating", "grid-statistics"}  # not the other's
        assert grants["demand-heating"].actions == ["withdraw"]
        assert grants["grid-statistics"].actions == ["object", "restrict"]
        assert grants["grid-statistics"].held_by is None

        first = await actions.exercise(socket, "object", CUSTOMER, "grid-statistics", "Miriam")
        assert first.changed and first.kind == "objection" and first.entry_seq > 0
        assert first.receipt is not None and first.receipt["receipt"]["grant"] == "grid-statistics"
        assert first.record is not None and first.record["dpv:hasRight"] == {"@id": "eu-gdpr:A21"}
        again = await actions.exercise(socket, "object", CUSTOMER, "grid-statistics", "Miriam")
        assert not again.changed and again.receipt is None
        assert again.entry_seq == first.entry_seq and again.by == "Miriam"
        held = {g.id: g for g in await actions.grants(socket, CUSTOMER)}
        assert held["grid-statistics"].held_by == "objection"

        with pytest.raises(KeyError):
            await actions.exercise(socket, "erase", CUSTOMER, "grid-statistics", "Miriam")


async def test_many_sessions_share_one_question_a_second_and_an_action_asks_again(
    tmp_path: Path,
) -> None:
    async with running_gateway(
        tmp_path,
        {"berg.yaml": POLICY, "sonne.yaml": OTHER_POLICY},
        [(CUSTOMER, "room-1", "Meeting room"), (OTHER, "stall-geheim-7", "Stall")],
    ) as harness:
        socket = harness.gateway.config.control_socket
        cache = actions.GrantsCache(fresh_s=3600.0)
        answers = await asyncio.gather(*(cache.get(socket, CUSTOMER) for _ in range(20)))
        assert cache.asked == 1 and all(a == answers[0] for a in answers)
        assert {g.id for g in answers[0]} == {"demand-heating", "grid-statistics"}
        theirs = await cache.get(socket, OTHER)  # another customer: their own question
        assert cache.asked == 2 and {g.id for g in theirs}.isdisjoint(g.id for g in answers[0])
        await actions.exercise(socket, "object", CUSTOMER, "grid-statistics", "Miriam")
        cache.forget(CUSTOMER)  # what the portal's action does: the effect shows at once
        held = {g.id: g for g in await cache.get(socket, CUSTOMER)}
        assert cache.asked == 3 and held["grid-statistics"].held_by == "objection"


async def test_an_unanswered_question_is_not_kept(tmp_path: Path) -> None:
    cache = actions.GrantsCache(fresh_s=3600.0)
    for _ in range(2):
        with pytest.raises(GatewayNotRunning):
            await cache.get(tmp_path / "no-gateway.sock", CUSTOMER)
    assert cache.asked == 2
