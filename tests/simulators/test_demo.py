"""The demo's devices (simulators/demo.py) against the example policies they stand for, through
the real engine: every device is recognised as the customer's device it claims to be, and
together they show every kind of decision the demo promises — ovens altered, the badge reader
never leaving the box, vans' positions coarsened, the meter held for its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from policies.compiler import compile_policy
from policies.decision import Decision, Outcome
from policies.engine import Engine
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.loader import load_policy
from policies.message import Message
from simulators.demo import DEMO_DEVICES, BadgeReader, DemoDevice, Retopic, demo_fleet
from simulators.devices import ZigbeeMotionSensor

NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Berlin, a Wednesday: office hours


class _Keys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return (customer + recipient).encode().ljust(32, b"k")


def _engine() -> Engine:
    return Engine(
        [compile_policy(load_policy(example_path(n)), RECIPIENTS) for n in EXAMPLES], _Keys()
    )


def _decide(engine: Engine, device: DemoDevice, at: datetime) -> list[Decision]:
    topic, payload = device.simulated.next_message(at.timestamp())
    return engine.evaluate(Message(topic, payload, at), at)


def test_every_demo_device_is_the_customers_device_it_claims_to_be() -> None:
    engine = _engine()
    fleet = demo_fleet()
    assert tuple((d.customer, d.device) for d in fleet) == DEMO_DEVICES
    assert len(set(DEMO_DEVICES)) == len(DEMO_DEVICES)
    for device in fleet:
        decisions = _decide(engine, device, NOON)
        assert decisions, device.device
        for decision in decisions:
            assert (decision.customer, decision.device) == (device.customer, device.device)
            assert decision.reason is None or decision.reason.code not in {
                "unknown_device",
                "unknown_topic",
                "unparseable",
            }, (device.device, decision.reason)


def test_the_demo_shows_every_kind_of_decision() -> None:
    engine = _engine()
    by_device: dict[str, list[Decision]] = {}
    for device in demo_fleet():
        by_device[device.device] = _decide(engine, device, NOON)
    assert {d.outcome for d in by_device["oven-1"]} == {Outcome.ALTERED}
    [oven] = by_device["oven-1"]
    assert {a.treatment for a in oven.altered} >= {"round", "pseudonymise"}
    assert b"BO-2291-0001" not in (oven.payload or b"")  # the serial left pseudonymised
    assert all(d.outcome is Outcome.WITHHELD for d in by_device["back-door"])
    assert all(d.payload is None for d in by_device["back-door"])  # badges stay on the box
    van = [d for d in by_device["van-01"] if d.payload is not None]
    assert van and all(d.outcome is Outcome.ALTERED for d in van)
    assert any(a.treatment == "coarsen" for d in van for a in d.altered)
    meter = by_device["floor-meter"]
    assert meter and all(d.payload is None for d in meter)  # held for its quarter hour
    summaries = engine.flush(NOON + timedelta(minutes=16))
    assert [(s.device, s.recipient) for s in summaries] == [("floor-meter", "energy-provider")]


def test_the_badge_reader_sends_who_came_in() -> None:
    reader = BadgeReader(seed=7)
    topic, payload = reader.next_message(NOON.timestamp())
    body = orjson.loads(payload)
    assert topic == "bakery/back-door/access"
    assert set(body) == {"ts", "badge", "holder", "granted"}
    assert body["granted"] is (body["holder"] != "Lieferant")


def test_a_retopiced_device_speaks_its_family_under_the_configured_topic() -> None:
    plain = ZigbeeMotionSensor("0x00158d00045a1b2c", 7)
    moved = Retopic(ZigbeeMotionSensor("0x00158d00045a1b2c", 7), "zigbee2mqtt/berg-room")
    t = NOON.timestamp()
    assert moved.device_id == plain.device_id and moved.topic == "zigbee2mqtt/berg-room"
    assert moved.next_message(t) == ("zigbee2mqtt/berg-room", plain.next_message(t)[1])


def test_the_same_seed_gives_the_same_demo() -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        return [d.simulated.next_message(NOON.timestamp() + 60) for d in demo_fleet(seed)]

    assert run(7) == run(7)
    assert run(7) != run(8)
