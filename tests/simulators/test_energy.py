"""The simulated energy devices (simulators/energy.py): the message kinds in the order the real
firmware sends them, counters that only go up and add up, the wallbox charging in the evening
until the car is full, each topic one its payload profile recognises, and the same seed giving
the same bytes."""

from __future__ import annotations

import json
from datetime import datetime

from policies.profiles import profile
from simulators.behaviour import CET
from simulators.energy import OpenEvseCharger, ShellyPlug, SmartMeter

T0 = datetime(2023, 11, 14, 10, 0, tzinfo=CET).timestamp()  # a Tuesday, office hours


def test_a_shelly_plug_sends_full_status_every_fifth_message_and_counts_up() -> None:
    plug = ShellyPlug("shellyplugsg3-aabbccddeeff", seed=3)
    messages = [plug.next_message(T0 + 60 * i) for i in range(20)]
    methods = [json.loads(p)["method"] for _, p in messages]
    assert [i for i, m in enumerate(methods) if m == "NotifyFullStatus"] == [0, 5, 10, 15]
    assert set(methods) == {"NotifyFullStatus", "NotifyStatus"}
    totals = [
        json.loads(p)["params"]["switch:0"]["aenergy"]["total"]
        for (_, p), m in zip(messages, methods, strict=True)
        if m == "NotifyFullStatus"
    ]
    assert totals == sorted(totals)
    shelly = profile("shelly_gen2")
    assert all(shelly.match(topic) is not None for topic, _ in messages)


def test_a_smart_meter_alternates_energy_and_meter_and_its_total_adds_the_periods() -> None:
    meter = SmartMeter("tasmota_meter", seed=5)
    payloads = [json.loads(meter.next_message(T0 + 10 * i)[1]) for i in range(40)]
    assert ["ENERGY" in p for p in payloads] == [i % 2 == 0 for i in range(40)]
    energy = [p["ENERGY"] for p in payloads if "ENERGY" in p]
    totals = [e["Total"] for e in energy]
    assert totals == sorted(totals) and totals[-1] > totals[0]
    # The counter grows by what the periods say (Wh, rounded per message; kWh to 3 places).
    added = sum(e["Period"] for e in energy[1:]) / 1000
    assert abs((totals[-1] - totals[0]) - added) < 0.1
    assert profile("smart_meter").match(meter.topic) is not None


def test_the_wallbox_announces_then_charges_in_the_evening_until_full() -> None:
    evening = datetime(2023, 11, 14, 21, 0, tzinfo=CET).timestamp()
    box = OpenEvseCharger("openevse-1a2b", seed=9)
    topic, announce = box.next_message(evening)
    assert topic == "openevse/announce/1a2b" and json.loads(announce)["mqtt"] == "openevse-1a2b"
    values: dict[str, list[str]] = {}
    for i in range(1, 5 * 240):  # four hours, a message every 12 s
        topic, payload = box.next_message(evening + 12 * i)
        values.setdefault(topic.rsplit("/", 1)[1], []).append(payload.decode())
    assert set(values) == {"amp", "pilot", "wh", "temp", "state"}
    assert values["amp"][0] == "16000" and values["state"][0] == "3"  # charging at 16 A
    assert values["amp"][-1] == "0" and values["state"][-1] == "254"  # full, still plugged in
    wh = [int(v) for v in values["wh"]]
    assert wh == sorted(wh)
    assert profile("ev_charger").match("openevse-1a2b/amp") is not None


def test_the_same_seed_gives_the_same_bytes() -> None:
    one, two = SmartMeter("m", seed=1), SmartMeter("m", seed=1)
    assert [one.next_message(T0 + i) for i in range(10)] == [
        two.next_message(T0 + i) for i in range(10)
    ]
    other = SmartMeter("m", seed=2)
    assert other.next_message(T0) != SmartMeter("m", seed=1).next_message(T0)
