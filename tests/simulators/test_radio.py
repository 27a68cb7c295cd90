"""The simulated radio devices (simulators/radio.py): a LoRaWAN uplink whose raw frame says what
its decoded payload says and whose frame counter counts, a badge beacon that is near in office
hours and far at night, a BLE thermometer sending numbers as strings like its firmware, each on a
topic its payload profile recognises."""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime

from policies.profiles import profile
from simulators.behaviour import CET
from simulators.radio import BleBeacon, BleClimateSensor, TtnSensor

OFFICE = datetime(2023, 11, 14, 10, 0, tzinfo=CET).timestamp()  # a Tuesday
NIGHT = datetime(2023, 11, 15, 2, 0, tzinfo=CET).timestamp()


def test_a_lorawan_uplink_s_frame_says_what_its_decoded_payload_says() -> None:
    sensor = TtnSensor("depot", "cold-1", seed=4, position=(48.137, 11.575))
    uplinks = [json.loads(sensor.next_message(OFFICE + 60 * i)[1]) for i in range(5)]
    assert sensor.topic == "v3/depot@ttn/devices/cold-1/up"
    assert profile("ttn_v3").match(sensor.topic) is not None
    for i, uplink in enumerate(uplinks):
        message = uplink["uplink_message"]
        assert message["f_cnt"] == i + 1
        raw, lum = struct.unpack(">hB", base64.b64decode(message["frm_payload"]))
        assert raw / 10 == message["decoded_payload"]["temperature"]
        assert lum == round(message["decoded_payload"]["luminosity"] * 100)
        user = message["locations"]["user"]
        assert (user["latitude"], user["longitude"]) == (48.137, 11.575)  # personal when carried
        assert uplink["end_device_ids"]["device_id"] == "cold-1"


def test_a_badge_beacon_is_near_in_office_hours_and_far_at_night() -> None:
    badge = BleBeacon("office", seed=2)
    assert profile("ble_presence").match(badge.topic) is not None
    day = [json.loads(badge.next_message(OFFICE + 30 * i)[1])["rssi"] for i in range(40)]
    night = [json.loads(badge.next_message(NIGHT + 30 * i)[1])["rssi"] for i in range(40)]
    assert max(night) <= -86 and max(day) >= -78
    payload = json.loads(badge.next_message(OFFICE)[1])
    assert payload["id"] == badge.device_id.lower()
    assert payload["distance"] == round(10 ** ((-59 - payload["rssi"]) / 20), 5)


def test_a_ble_thermometer_sends_numbers_as_strings_that_agree() -> None:
    sensor = BleClimateSensor("office", seed=2)
    assert sensor.device_id != BleBeacon("office", seed=2).device_id  # two radios, two MACs
    for i in range(10):
        payload = json.loads(sensor.next_message(OFFICE + 60 * i)[1])
        assert all(isinstance(v, str) for v in payload.values())
        celsius = float(payload["tempc"])
        assert float(payload["tempf"]) == round(celsius * 9 / 5 + 32, 2)
        assert 10 < celsius < 30 and 20 < float(payload["hum"]) < 80
