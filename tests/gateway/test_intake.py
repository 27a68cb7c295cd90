"""Intake: the commit window, and each topic resolved once while the policies stay the same."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from gateway.messages.flood import FloodGuard
from gateway.messages.intake import COMMIT_WINDOW_S, Intake
from gateway.messages.mqtt import Inbound
from gateway.messages.pseudonyms import Keyring
from policies.engine import Engine
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_end_to_end import BAKERY
from tests.policies.conftest import compile_text

TOPIC = "bakery/oven-1/telemetry"


def _engine() -> Engine:
    return Engine([compile_text(BAKERY, {"oven-maker": "Ofenbau Müller"})], Keyring())


def _message(link: FakeLink, received: float) -> Inbound:
    message = link.deliver(TOPIC, orjson.dumps({"temperature": 180.0}))
    message.received = received
    return message


# A window far longer than any scheduling delay of a busy machine, so the order of events is
# certain; the gateway's own is COMMIT_WINDOW_S.
WINDOW = 0.4


async def test_messages_arriving_densely_share_one_commit_within_the_window() -> None:
    engine = _engine()
    intake = Intake(engine=lambda: engine, queue_size=100, batch_max=100, window_s=WINDOW)
    link = FakeLink()
    intake.receive(_message(link, time.monotonic()))
    assert [a.inbound.mid for a in await intake.take()] == [1]  # the first: nothing before it
    intake.receive(_message(link, time.monotonic()))  # dense: well within the window
    loop = asyncio.get_running_loop()
    loop.call_later(WINDOW / 8, lambda: intake.receive(_message(link, time.monotonic())))
    started = time.monotonic()
    batch = await intake.take()
    assert [a.inbound.mid for a in batch] == [2, 3]  # the third shared the second's commit
    # The wait ended when the second message was WINDOW old (the loop's timer, give or take).
    assert WINDOW / 2 < time.monotonic() - started < 1.5 * WINDOW


async def test_a_message_after_a_quiet_spell_is_taken_at_once() -> None:
    engine = _engine()
    intake = Intake(engine=lambda: engine, queue_size=100, batch_max=100, window_s=WINDOW)
    link = FakeLink()
    now = time.monotonic()
    intake.receive(_message(link, now - 10 * WINDOW))  # long before: a quiet site
    assert [a.inbound.mid for a in await intake.take()] == [1]
    intake.receive(_message(link, now))
    loop = asyncio.get_running_loop()
    loop.call_later(WINDOW / 8, lambda: intake.receive(_message(link, time.monotonic())))
    assert [a.inbound.mid for a in await intake.take()] == [2]  # no wait for the third
    assert [a.inbound.mid for a in await intake.take()] == [3]


async def test_the_gateway_s_window_is_bounded_by_the_latency_budget() -> None:
    assert 0 < COMMIT_WINDOW_S <= 0.002


async def test_a_topic_is_resolved_once_until_the_policies_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolved: list[str] = []
    device_for = Engine.device_for

    def counting(self: Engine, topic: str) -> object:
        resolved.append(topic)
        return device_for(self, topic)

    monkeypatch.setattr(Engine, "device_for", counting)
    engine = _engine()
    intake = Intake(
        engine=lambda: engine,
        queue_size=100,
        batch_max=100,
        flood=FloodGuard(rate=100.0, burst=100),
    )
    intake.receive(_message(FakeLink(), time.monotonic()))
    (arrival,) = await intake.take()
    assert resolved == [TOPIC]  # the flood guard needed the device: resolved on arrival
    device = arrival.device_under(engine)
    assert device is not None and (device.customer, device.device) == (
        "baeckerei-schmidt",
        "oven-1",
    )
    assert resolved == [TOPIC]  # the pipeline's questions reuse it
    reloaded = _engine()
    assert arrival.device_under(reloaded) == device
    assert resolved == [TOPIC, TOPIC]  # another policy set: resolved again under it
