"""The deciding step alone: the gateway's limits first, then the policies; never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.messages.deciding import MAX_TOPIC_BYTES, Decider
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival
from gateway.messages.pseudonyms import Keyring
from policies.decision import Outcome
from policies.engine import Engine
from policies.message import Message
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_end_to_end import BAKERY
from tests.policies.conftest import compile_text, make_engine

TOPIC = "bakery/oven-1/telemetry"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BODY = orjson.dumps({"temperature": 180.0})


def _engine() -> Engine:
    return Engine([compile_text(BAKERY, {"oven-maker": "Ofenbau Müller"})], Keyring())


def _arrival(topic: str = TOPIC, body: bytes = BODY, *, flooding: bool = False) -> Arrival:
    return Arrival(FakeLink().deliver(topic, body), flooding=flooding)


async def test_a_message_within_the_limits_is_decided_by_the_policies() -> None:
    engine = _engine()
    decisions = Decider(max_payload_bytes=len(BODY)).decide(engine, _arrival(), NOW)
    assert decisions == engine.evaluate(Message(TOPIC, BODY, NOW, False), NOW)
    assert any(d.outcome is not Outcome.WITHHELD for d in decisions)


async def test_a_payload_over_the_limit_is_withheld_under_its_device() -> None:
    (decision,) = Decider(max_payload_bytes=len(BODY) - 1).decide(_engine(), _arrival(), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "too_large"
    assert decision.reason.params == {"size": str(len(BODY)), "limit": str(len(BODY) - 1)}
    assert (decision.customer, decision.device) == ("baeckerei-schmidt", "oven-1")


async def test_a_topic_over_the_limit_is_withheld_before_any_grant_copies_it() -> None:
    # Under a device's own "#" level a device may send a topic up to MQTT's 65,535 bytes; a
    # grant's template copying it behind a recipient's prefix would make a topic paho refuses,
    # a row that could never leave. Counted in bytes: 2 bytes a character here.
    long = TOPIC + "/" + "ä" * (MAX_TOPIC_BYTES // 2)
    (decision,) = Decider(max_payload_bytes=1024).decide(_engine(), _arrival(long), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "too_large"
    size = len(long.encode())
    assert decision.reason.params == {"topic": str(size), "limit": str(MAX_TOPIC_BYTES)}
    # At the limit, the policies decide as ever (here: no device of this customer's matches).
    at_limit = "x" * MAX_TOPIC_BYTES
    decisions = Decider(max_payload_bytes=1024).decide(_engine(), _arrival(at_limit), NOW)
    assert all(d.reason is None or d.reason.code != "too_large" for d in decisions)


async def test_a_flooding_device_is_withheld_with_the_configured_rate() -> None:
    decider = Decider(max_payload_bytes=1024, flood=FloodGuard(2.5, 5))
    (decision,) = decider.decide(_engine(), _arrival(flooding=True), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "flooding"
    assert decision.reason.params == {"limit": "2.5"}


async def test_a_device_whose_policy_is_not_loaded_is_withheld_and_attributed() -> None:
    owners = {"mueller/door-1/state": ("mueller-soehne", "door-1", "state")}
    decider = Decider(max_payload_bytes=1024, not_loaded=owners.get)
    (decision,) = decider.decide(_engine(), _arrival("mueller/door-1/state"), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "policy_not_loaded"
    assert (decision.customer, decision.device, decision.stream) == (
        "mueller-soehne",
        "door-1",
        "state",
    )
    assert decision.withheld == ("$payload",)


async def test_an_engine_that_raises_withholds_the_message_and_logs_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine()

    def broken(*args: object, **kwargs: object) -> object:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(engine, "evaluate", broken)
    (decision,) = Decider(max_payload_bytes=1024).decide(engine, _arrival(), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == "internal_error"
    assert decision.reason.params == {"error": "ZeroDivisionError"}
    assert "the policy engine failed" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_rate_limits_are_spaced_by_when_the_broker_handed_the_messages_over() -> None:
    """The monotonic time of receipt, not the system clock: a clock step neither frees a
    rate-limited grant early nor holds it back for as long as the clock is behind."""
    engine = make_engine({"fields": {"t": "keep"}, "rate_limit": "60s"})
    decider = Decider(max_payload_bytes=1024)

    def arrive(received: float) -> Arrival:
        arrival = _arrival("acme/dev/anna", b'{"t":1}')
        arrival.inbound.received = received
        return arrival

    assert decider.decide(engine, arrive(1000.0), NOW)[0].outcome is Outcome.SHARED
    (limited,) = decider.decide(engine, arrive(1030.0), NOW + timedelta(hours=1))
    assert limited.reason is not None and limited.reason.code == "rate_limited"
    assert decider.decide(engine, arrive(1061.0), NOW)[0].outcome is Outcome.SHARED
