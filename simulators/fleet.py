"""Build N simulated devices of one payload profile, with names, ids and MACs from a seed."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from types import MappingProxyType

from policies.profiles import PROFILES, profile
from simulators.devices import (
    HaMotionSensor,
    HaPhoneTracker,
    OwnTracksPhone,
    SimulatedDevice,
    TasmotaCo2Sensor,
    TasmotaOven,
    ZigbeeMotionSensor,
    ZigbeeWeatherSensor,
    hex_bytes,
    mac_address,
)
from simulators.energy import OpenEvseCharger, ShellyPlug, SmartMeter
from simulators.radio import BleBeacon, BleClimateSensor, TtnSensor
from simulators.sparkplug import SparkplugOven

__all__ = ["BUILDERS", "build_fleet"]

_USERS = (
    "anna", "ben", "clara", "david", "eva", "felix", "greta", "hannes", "ida", "jonas",
    "lena", "max", "nina", "oskar", "paula", "quirin", "rosa", "simon", "tina", "uwe",
)  # fmt: skip

Builder = Callable[[int, random.Random, int], SimulatedDevice]


def _user(i: int) -> str:
    name = _USERS[i % len(_USERS)]
    return name if i < len(_USERS) else f"{name}{i // len(_USERS) + 1}"


def _owntracks(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    user = _user(i)
    tid = (user[0] + user[-1]).upper()
    return OwnTracksPhone(user, "phone", tid, seed, start_m=rng.uniform(0, 20_000))


def _zigbee(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    if i % 2 == 0:
        return ZigbeeMotionSensor("0x00158d000" + hex_bytes(rng, 4)[1:].lower(), seed)
    return ZigbeeWeatherSensor(f"wetter_{i // 2 + 1}", seed)


def _tasmota(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    if i % 2 == 0:
        return TasmotaOven(f"backofen_{i // 2 + 1}", seed)
    return TasmotaCo2Sensor(f"tasmota_{hex_bytes(rng, 3)}", seed)


def _homeassistant(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    if i % 2 == 0:
        return HaMotionSensor(f"buero_{i // 2 + 1}", seed)
    return HaPhoneTracker(hex_bytes(rng, 6).lower(), seed)


def _shelly(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    return ShellyPlug(f"shellyplusplugs-{hex_bytes(rng, 6).lower()}", seed)


def _ttn(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    position = (round(48.18 + rng.uniform(-0.01, 0.01), 7), round(11.51 + rng.uniform(0, 0.02), 7))
    return TtnSensor("kuehlkette", f"kuehlsensor-{i + 1:02d}", seed, position=position)


def _sparkplug(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    return SparkplugOven("Werk Nord", f"Linie {i + 1}", "Ofen 1", seed)


def _smart_meter(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    return SmartMeter(f"zaehler_{i + 1}", seed)


def _ev_charger(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    return OpenEvseCharger(hex_bytes(rng, 6).lower(), seed)


def _ble(i: int, rng: random.Random, seed: int) -> SimulatedDevice:
    mac = mac_address(rng)
    if i % 2 == 0:
        return BleBeacon("OpenMQTTGateway", seed, mac=mac)
    return BleClimateSensor("OpenMQTTGateway", seed, mac=mac)


BUILDERS: Mapping[str, Builder] = MappingProxyType(
    {
        "owntracks": _owntracks,
        "zigbee2mqtt": _zigbee,
        "tasmota": _tasmota,
        "homeassistant": _homeassistant,
        "shelly_gen2": _shelly,
        "ttn_v3": _ttn,
        "sparkplug_b": _sparkplug,
        "smart_meter": _smart_meter,
        "ev_charger": _ev_charger,
        "ble_presence": _ble,
    }
)
assert set(BUILDERS) == set(PROFILES), "every payload profile needs a simulator"


def build_fleet(profile_name: str, count: int, seed: int) -> list[SimulatedDevice]:
    """``count`` devices of ``profile_name``; the same seed gives the same devices.

    Raises ``UnknownProfile`` (naming the known profiles) for an unknown name and ``ValueError``
    for a negative count.
    """
    profile(profile_name)  # the error names the known profiles
    if count < 0:
        raise ValueError(f"device count must be >= 0, got {count}")
    rng = random.Random(f"fleet/{profile_name}/{seed}")
    builder = BUILDERS[profile_name]
    return [builder(i, rng, seed) for i in range(count)]
