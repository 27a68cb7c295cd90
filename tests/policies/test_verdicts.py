"""The decisions the engine builds: withheld with its leaves, released, internal failure."""

from __future__ import annotations

import logging

import pytest

from policies.compiler import CompiledPolicy
from policies.decision import Alteration, Outcome, Reason
from policies.listing import Listed
from policies.routes import RouteTable
from policies.verdicts import internal, released, withheld


def test_withheld_lists_every_leaf(examples: list[CompiledPolicy]) -> None:
    route = RouteTable(examples).lookup("bakery/oven-1/telemetry")
    assert route is not None
    listed = Listed()
    listed.add("t", 1)
    listed.add("serial", 6)
    decision = withheld(route[0], "r1", None, Reason("no_grant"), listed)
    assert decision.outcome is Outcome.WITHHELD and decision.reason == Reason("no_grant")
    assert decision.withheld == ("t", "serial")
    assert (decision.customer, decision.device, decision.grant) == (
        "baeckerei-schmidt",
        "oven-1",
        None,
    )
    assert not decision.omitted


def test_released_is_altered_only_with_an_alteration(examples: list[CompiledPolicy]) -> None:
    hit = RouteTable(examples).lookup("bakery/oven-1/telemetry")
    assert hit is not None
    route = hit[0]
    grant = next(g for _, grants in route.recipients for g in grants)
    shared = released(
        route, grant, "up/t", body=b"{}", shared=["t"], altered=[], withheld=(), opaque=False
    )
    assert shared.outcome is Outcome.SHARED and shared.topic == "up/t"
    change = Alteration("t", "round", "0.5")
    altered = released(
        route, grant, "up/t", body=b"{}", shared=[], altered=[change], withheld=(), opaque=False
    )
    assert altered.outcome is Outcome.ALTERED and altered.altered == (change,)


def test_internal_withholds_and_tells_the_installer(
    examples: list[CompiledPolicy], caplog: pytest.LogCaptureFixture
) -> None:
    hit = RouteTable(examples).lookup("bakery/oven-1/telemetry")
    assert hit is not None
    with caplog.at_level(logging.ERROR, logger="policies.engine"):
        decision = internal(hit[0], "r1", None, KeyError("x"), "bakery/oven-1/telemetry")
    assert decision.outcome is Outcome.WITHHELD and decision.withheld == ("$payload",)
    assert decision.reason == Reason("internal_error", {"error": "KeyError"})
    assert "withheld with reason internal_error" in caplog.text
    unknown = internal(None, None, None, ValueError(), "x")
    assert unknown.customer is None and unknown.reason == Reason(
        "internal_error", {"error": "ValueError"}
    )
