"""The demo's devices: one simulated device for each device in ``policies/examples``.

Each publishes the real format of its family under the topic its customer's policy declares, so
the demo shows every kind of decision: ovens shared with rounding and a pseudonymised serial, a
badge reader that never leaves the box, vans whose positions are coarsened and rate limited,
occupancy released only in office hours, a meter aggregated over 15 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.behaviour import oven_temperature
from simulators.devices import (
    DeviceBase,
    OwnTracksPhone,
    SimulatedDevice,
    ZigbeeMotionSensor,
    iso_utc,
)
from simulators.energy import SmartMeter
from simulators.wire import JsonValue, dumps

__all__ = ["DEMO_DEVICES", "BadgeReader", "BakeryOven", "DemoDevice", "Retopic", "demo_fleet"]


class Retopic:
    """A device speaking its family's format under the topic an installer configured."""

    def __init__(self, device: SimulatedDevice, topic: str) -> None:
        self._device = device
        self._topic = topic

    @property
    def device_id(self) -> str:
        return self._device.device_id

    @property
    def topic(self) -> str:
        return self._topic

    def next_message(self, t: float) -> tuple[str, bytes]:
        _, payload = self._device.next_message(t)
        return self._topic, payload


class BakeryOven(DeviceBase):
    """A deck oven's controller: temperature, setpoint, door, burner, energy, serial number."""

    def __init__(self, device_id: str, serial: str, seed: int) -> None:
        super().__init__(device_id, f"bakery/{device_id}/telemetry", seed)
        self._serial = serial
        self._phase_s = self._rng.uniform(0, 5400)
        self._energy = self._rng.uniform(1000, 5000)

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, elapsed = self._tick(t)
        temperature, burner = oven_temperature(self._phase_s + elapsed * 60)  # a batch per 90 s
        self._energy += 0.02 if burner else 0.002
        errors = [{"code": "E17", "text": "Türkontakt prüfen"}] if n % 40 == 39 else []
        payload: dict[str, JsonValue] = {
            "ts": iso_utc(t, 3),
            "temperature": round(temperature + self._rng.gauss(0, 0.2), 2),
            "setpoint": 180,
            "door_open": self._rng.random() < 0.05,
            "burner_on": burner,
            "energy_kwh": round(self._energy, 3),
            "serial": self._serial,
            "operator": self._rng.choice(("Anna Schmidt", "Jonas Vogel")),
            "errors": errors,
        }
        return self.topic, dumps(payload)


class BadgeReader(DeviceBase):
    """The back door's card reader: who came in when. Personal data that stays on the box."""

    _HOLDERS = (
        ("04:A3:2B:91", "Anna Schmidt"),
        ("04:7F:10:C2", "Jonas Vogel"),
        ("04:11:EE:05", "Lieferant"),
    )

    def __init__(self, seed: int) -> None:
        super().__init__("back-door", "bakery/back-door/access", seed)

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        badge, holder = self._rng.choice(self._HOLDERS)
        payload: dict[str, JsonValue] = {
            "ts": iso_utc(t, 3),
            "badge": badge,
            "holder": holder,
            "granted": holder != "Lieferant",
        }
        return self.topic, dumps(payload)


@dataclass(frozen=True, slots=True)
class DemoDevice:
    customer: str
    device: str
    name: str
    kind: str
    simulated: SimulatedDevice


def demo_fleet(seed: int = 7) -> list[DemoDevice]:
    return [
        DemoDevice(
            "baeckerei-schmidt",
            "oven-1",
            "Backofen 1",
            "oven",
            BakeryOven("oven-1", "BO-2291-0001", seed),
        ),
        DemoDevice(
            "baeckerei-schmidt",
            "oven-2",
            "Backofen 2",
            "oven",
            BakeryOven("oven-2", "BO-2291-0002", seed),
        ),
        DemoDevice(
            "baeckerei-schmidt",
            "back-door",
            "Hintertür (Kartenleser)",
            "badge-reader",
            BadgeReader(seed),
        ),
        DemoDevice(
            "spedition-weber",
            "van-01",
            "Transporter 01",
            "van",
            OwnTracksPhone("mkeller", "van-01", "MK", seed),
        ),
        DemoDevice(
            "spedition-weber",
            "van-02",
            "Transporter 02",
            "van",
            OwnTracksPhone("tyilmaz", "van-02", "TY", seed, start_m=4000),
        ),
        DemoDevice(
            "berg-partner",
            "meeting-room",
            "Besprechungsraum",
            "occupancy",
            Retopic(
                ZigbeeMotionSensor("0x00158d00045a1b2c", seed), "zigbee2mqtt/berg-meeting-room"
            ),
        ),
        DemoDevice(
            "berg-partner",
            "office-east",
            "Büro Ost",
            "occupancy",
            Retopic(ZigbeeMotionSensor("0x00158d00045a9f31", seed), "zigbee2mqtt/berg-office-east"),
        ),
        DemoDevice(
            "berg-partner",
            "floor-meter",
            "Etagenzähler",
            "meter",
            Retopic(SmartMeter("berg-meter", seed), "tele/berg-meter/SENSOR"),
        ),
    ]


DEMO_DEVICES = tuple((d.customer, d.device) for d in demo_fleet())
