"""Simulated devices that speak the real formats of ``shared/payloads`` (one class per kind).

Every device is deterministic: built from the same seed and asked at the same times ``t`` (Unix
seconds), it returns the same topics and bytes. Payload shapes — keys, nesting, JSON types and
number literals — follow the real sample of their family; values vary plausibly over time.

This module holds the protocol, the shared base and the home and office families (OwnTracks,
Zigbee2MQTT, Tasmota, Home Assistant); ``energy``, ``radio`` and ``sparkplug`` hold the rest.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from simulators.behaviour import (
    MUNICH_DELIVERY_ROUND,
    local_time,
    occupancy_level,
    occupied,
    oven_temperature,
)
from simulators.wire import JsonValue, dumps

__all__ = [
    "DeviceBase",
    "HaMotionSensor",
    "HaPhoneTracker",
    "OwnTracksPhone",
    "SimulatedDevice",
    "TasmotaCo2Sensor",
    "TasmotaOven",
    "ZigbeeMotionSensor",
    "ZigbeeWeatherSensor",
    "hex_bytes",
    "iso_local",
    "iso_utc",
    "mac_address",
]


@runtime_checkable
class SimulatedDevice(Protocol):
    """A device: its identity, its main topic, and its next message at time ``t``."""

    @property
    def device_id(self) -> str: ...

    @property
    def topic(self) -> str: ...

    def next_message(self, t: float) -> tuple[str, bytes]: ...


class DeviceBase:
    """Shared state: a per-device random stream, the message count, the first ``t`` seen."""

    def __init__(self, device_id: str, topic: str, seed: int) -> None:
        self._device_id = device_id
        self._topic = topic
        self._rng = random.Random(f"{seed}/{type(self).__name__}/{device_id}")
        self._count = 0
        self._t0: float | None = None

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def topic(self) -> str:
        return self._topic

    def _tick(self, t: float) -> tuple[int, float]:
        """(index of this message, seconds since the first message)."""
        if self._t0 is None:
            self._t0 = t
        n = self._count
        self._count += 1
        return n, t - self._t0


def iso_local(t: float) -> str:
    """Tasmota's ``Time``: local time without a zone."""
    return local_time(t).strftime("%Y-%m-%dT%H:%M:%S")


def iso_utc(t: float, digits: int) -> str:
    """The Things Stack's timestamps: UTC with ``digits`` fractional digits and ``Z``."""
    ns = round(t * 1e9)
    whole, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{f'{frac:09d}'[:digits]}Z"


def hex_bytes(rng: random.Random, nbytes: int) -> str:
    return "".join(f"{rng.randrange(256):02X}" for _ in range(nbytes))


def mac_address(rng: random.Random) -> str:
    """A locally plausible MAC, upper case with colons."""
    return ":".join(hex_bytes(rng, 1) for _ in range(6))


# --- OwnTracks -------------------------------------------------------------------------------


class OwnTracksPhone(DeviceBase):
    """A courier's phone in a parcel van driving its round through Munich (iOS-style payload)."""

    _TAGS = ("Tour", "Lieferung", "Pause", "Depot")

    def __init__(
        self, user: str, device: str, tid: str, seed: int, *, start_m: float = 0.0
    ) -> None:
        super().__init__(f"{user}/{device}", f"owntracks/{user}/{device}", seed)
        self._tid = tid
        self._start_m = start_m
        self._speed_mps = self._rng.uniform(6.0, 11.0)  # 20-40 km/h in town
        self._battery = 100 - self._rng.randrange(25)

    def next_message(self, t: float) -> tuple[str, bytes]:
        _, elapsed = self._tick(t)
        lat, lon = MUNICH_DELIVERY_ROUND.position(self._start_m + self._speed_mps * elapsed)
        rng = self._rng
        payload: dict[str, JsonValue] = {
            "_type": "location",
            "acc": rng.choice((5, 10, 16, 35, 65)),
            "alt": 515 + rng.randrange(-6, 7),
            "batt": max(3, self._battery - int(elapsed // 900)),
            "bs": 1,
            "conn": rng.choice(("m", "m", "m", "w")),
            "lat": round(lat + rng.gauss(0, 0.00004), 6),
            "lon": round(lon + rng.gauss(0, 0.00004), 6),
            "m": 2,
            "tag": rng.choice(self._TAGS),
            "tid": self._tid,
            "tst": int(t),
        }
        return self.topic, dumps(payload)


# --- Zigbee2MQTT -----------------------------------------------------------------------------


class ZigbeeMotionSensor(DeviceBase):
    """An Aqara motion sensor in an office, reporting under its IEEE address."""

    def __init__(self, ieee: str, seed: int) -> None:
        super().__init__(ieee, f"zigbee2mqtt/{ieee}", seed)
        self._battery = 100 - self._rng.randrange(40)

    def next_message(self, t: float) -> tuple[str, bytes]:
        _, elapsed = self._tick(t)
        rng = self._rng
        occ = occupied(t, rng)
        hour = local_time(t).hour
        daylight = 400 if 8 <= hour < 17 else 0
        lux = daylight + (250 if occ else 0) + rng.randrange(0, 30)
        battery = max(1, self._battery - int(elapsed // 86_400))
        payload: dict[str, JsonValue] = {
            "battery": battery,
            "voltage": 2800 + battery * 4 + rng.randrange(-5, 6),
            "illuminance": lux,
            "linkquality": rng.randrange(15, 200),
            "occupancy": occ,
            "illuminance_lux": lux,
        }
        return self.topic, dumps(payload)


class ZigbeeWeatherSensor(DeviceBase):
    """An outdoor temperature sensor on a winter terrace."""

    def __init__(self, friendly_name: str, seed: int) -> None:
        super().__init__(friendly_name, f"zigbee2mqtt/{friendly_name}", seed)
        self._temp = self._rng.uniform(-3.0, 4.0)

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        hour = local_time(t).hour
        target = -2.0 + 6.0 * max(0.0, 1 - abs(hour - 14) / 8)
        self._temp += (target - self._temp) * 0.1 + self._rng.gauss(0, 0.05)
        return self.topic, dumps({"temperature": round(self._temp, 2)})


# --- Tasmota ---------------------------------------------------------------------------------


class _Tasmota(DeviceBase):
    def __init__(self, topic_name: str, seed: int) -> None:
        super().__init__(topic_name, f"tele/{topic_name}/SENSOR", seed)
        self._boot_s = self._rng.randrange(10, 200_000)
        self._ssid = self._rng.choice(("FRITZ!Box 7590 XY", "Backstube", "leela", "Werkstatt"))
        self._bssid = mac_address(self._rng)

    def _state(self, t: float, elapsed: float, power: bool) -> bytes:
        up = int(self._boot_s + elapsed)
        days, rest = divmod(up, 86_400)
        uptime = f"{days}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
        rng = self._rng
        rssi = rng.randrange(30, 90)
        payload: dict[str, JsonValue] = {
            "Time": iso_local(t),
            "Uptime": uptime,
            "UptimeSec": up,
            "Heap": rng.randrange(24, 30),
            "SleepMode": "Dynamic",
            "Sleep": 50,
            "LoadAvg": rng.randrange(15, 25),
            "MqttCount": 1,
            "POWER": "ON" if power else "OFF",
            "Wifi": {
                "AP": 1,
                "SSId": self._ssid,
                "BSSId": self._bssid,
                "Channel": 3,
                "RSSI": rssi,
                "Signal": rssi // 2 - 100,
                "LinkCount": 1,
                "Downtime": "0T00:00:05",
            },
        }
        return dumps(payload)


class TasmotaOven(_Tasmota):
    """A bakery oven's DS18B20 probe: heats, bakes, cools; every fifth message is STATE."""

    def __init__(self, topic_name: str, seed: int) -> None:
        super().__init__(topic_name, seed)
        self._phase_s = self._rng.uniform(0, 5400)

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, elapsed = self._tick(t)
        temp, heater = oven_temperature(self._phase_s + elapsed)
        if n % 5 == 4:
            return f"tele/{self.device_id}/STATE", self._state(t, elapsed, heater)
        temp += self._rng.gauss(0, 0.15)
        # Verbatim Tasmota spacing: a blank after the first comma only.
        body = f'{{"Time":"{iso_local(t)}", "DS18B20":{{"Temperature":{temp:.1f}}}}}'
        return self.topic, body.encode()


class TasmotaCo2Sensor(_Tasmota):
    """An SCD40 in a meeting room: CO2 follows how many people are in."""

    def __init__(self, topic_name: str, seed: int) -> None:
        super().__init__(topic_name, seed)
        self._co2 = 430.0 + self._rng.uniform(0, 60)
        self._last_t: float | None = None

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        level = occupancy_level(t)
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        target = 420.0 + 1100.0 * level
        self._co2 += (target - self._co2) * min(1.0, dt / 1200.0) + self._rng.gauss(0, 3)
        rng = self._rng
        temp = 21.0 + 1.8 * level + rng.gauss(0, 0.1)
        hum = 45.0 + 12.0 * level + rng.gauss(0, 0.3)
        co2 = int(self._co2)
        payload: dict[str, JsonValue] = {
            "Time": iso_local(t),
            "SCD40": {
                "CarbonDioxide": co2,
                "eCO2": co2 + rng.randrange(0, 10),
                "Temperature": round(temp, 1),
                "Humidity": round(hum, 1),
                "DewPoint": round(temp - (100 - hum) / 5, 1),
            },
            "TempUnit": "C",
        }
        return self.topic, dumps(payload)


# --- Home Assistant --------------------------------------------------------------------------


class HaMotionSensor(DeviceBase):
    """A motion binary sensor's plain-text state (``ON``/``OFF``)."""

    def __init__(self, object_id: str, seed: int) -> None:
        super().__init__(object_id, f"homeassistant/binary_sensor/{object_id}/state", seed)

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        return self.topic, b"ON" if occupied(t, self._rng) else b"OFF"


class HaPhoneTracker(DeviceBase):
    """A person's phone as an MQTT device_tracker: home at night, office by day."""

    def __init__(self, tracker_id: str, seed: int) -> None:
        super().__init__(tracker_id, f"{tracker_id}/attributes", seed)
        rng = self._rng
        self._home = (48.11 + rng.uniform(0, 0.06), 11.52 + rng.uniform(0, 0.1))
        self._office = (48.1374 + rng.uniform(-0.005, 0.005), 11.5755 + rng.uniform(-0.005, 0.005))

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        rng = self._rng
        lat, lon = self._office if occupancy_level(t) >= 0.4 else self._home
        payload: dict[str, JsonValue] = {
            "latitude": round(lat + rng.gauss(0, 0.0001), 5),
            "longitude": round(lon + rng.gauss(0, 0.0001), 5),
            "gps_accuracy": round(rng.uniform(1.0, 25.0), 1),
        }
        return self.topic, dumps(payload, spaced=True)
