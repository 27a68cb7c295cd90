"""Intake: each topic resolved once while the policies stay the same."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.messages.clock import elapsed
from gateway.messages.endpoint import Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Intake
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
    intake.receive(_message(FakeLink(), elapsed()))
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


async def test_a_waiting_take_wakes_at_the_first_arrival_and_the_queue_has_a_hard_end() -> None:
    engine = _engine()
    intake = Intake(engine=lambda: engine, queue_size=2, batch_max=100)
    link = FakeLink()
    async with asyncio.TaskGroup() as tasks:
        taking = tasks.create_task(intake.take(), name="take")
        await asyncio.sleep(0)  # the take waits on the empty queue
        assert not taking.done() and intake.empty()
        first = _message(link, elapsed())
        intake.receive(first)
        assert [a.inbound for a in await taking] == [first]
    assert intake.empty()
    # Reading pauses at the mark (2); past it and its 64 messages of slack, a message is
    # refused, not dropped in silence (paho's read fails; the broker keeps it).
    for _ in range(2 + 64):
        intake.receive(_message(link, elapsed()))
    assert link.paused >= 1
    with pytest.raises(asyncio.QueueFull):
        intake.receive(_message(link, elapsed()))
    assert len(await intake.take()) == 2 + 64


async def test_a_message_refused_at_the_queues_end_takes_no_flood_token() -> None:
    """The refused packet is handled again later: a token taken now would be taken twice."""
    engine = _engine()
    flood = FloodGuard(rate=1e-9, burst=67)  # no refill within the test
    intake = Intake(engine=lambda: engine, queue_size=2, batch_max=100, flood=flood)
    link, at = FakeLink(), elapsed()
    for _ in range(2 + 64):
        intake.receive(_message(link, at))
    with pytest.raises(asyncio.QueueFull):
        intake.receive(_message(link, at))
    # Asked before the queue drains (resuming credits every bucket): the 67th token is left
    # for the refused message when it comes again.
    assert flood.allow(("baeckerei-schmidt", "oven-1"), at)
    assert not flood.allow(("baeckerei-schmidt", "oven-1"), at)
