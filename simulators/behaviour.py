"""How simulated things change over time: a van on its route, office hours, an oven, a household.

Pure functions of the time ``t`` (Unix seconds) and, where there is chance, a ``random.Random``
passed in, so a device built from a seed replays exactly.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "CET",
    "MUNICH_DELIVERY_ROUND",
    "Route",
    "household_power_w",
    "local_time",
    "occupancy_level",
    "occupied",
    "oven_temperature",
]

# Fixed UTC+1: simulated devices need a plausible day, not the DST rules.
CET = timezone(timedelta(hours=1), "CET")
_EARTH_RADIUS_M = 6_371_000.0


def local_time(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).astimezone(CET)


def occupancy_level(t: float) -> float:
    """Expected share of an office's people present at ``t`` (0 at night and at weekends)."""
    now = local_time(t)
    if now.weekday() >= 5:
        return 0.02
    hour = now.hour + now.minute / 60
    if hour < 7 or hour >= 19:
        return 0.0
    if hour < 9:  # arriving
        return 0.8 * (hour - 7) / 2
    if 12 <= hour < 13:  # lunch
        return 0.45
    if hour >= 17:  # leaving
        return 0.8 * (19 - hour) / 2
    return 0.8


def occupied(t: float, rng: random.Random) -> bool:
    """Whether a motion sensor in the office sees someone right now."""
    return rng.random() < max(occupancy_level(t), 0.01)


def oven_temperature(elapsed_s: float, *, period_s: float = 5400.0) -> tuple[float, bool]:
    """Temperature (°C) and heater state of a baking oven running one batch per ``period_s``.

    Each cycle: heat from ambient towards 200 °C, hold 180 °C with thermostat ripple for the
    bake, then cool with the door closed.
    """
    ambient, setpoint = 21.0, 180.0
    phase = elapsed_s % period_s
    preheat, bake = period_s * 0.12, period_s * 0.62
    if phase < preheat:
        temp = ambient + (setpoint + 20 - ambient) * (1 - math.exp(-phase / (preheat / 2.2)))
        return min(temp, setpoint), True
    if phase < bake:
        ripple = 2.5 * math.sin((phase - preheat) / 90.0)
        return setpoint + ripple, ripple < 0
    cooling = phase - bake
    return ambient + (setpoint - ambient) * math.exp(-cooling / (period_s * 0.15)), False


def household_power_w(t: float, rng: random.Random) -> float:
    """Electrical load of a household: base load, a morning and an evening peak, some spikes."""
    now = local_time(t)
    hour = now.hour + now.minute / 60
    base = 180.0
    morning = 900.0 * math.exp(-(((hour - 7.0) / 0.8) ** 2))
    evening = 1600.0 * math.exp(-(((hour - 19.0) / 1.6) ** 2))
    spike = 2000.0 if rng.random() < 0.03 else 0.0  # kettle, oven, washing machine
    return base + morning + evening + spike + rng.uniform(-40.0, 40.0)


@dataclass(frozen=True, slots=True)
class Route:
    """A closed route through waypoints (lat, lon), driven at a constant speed."""

    waypoints: tuple[tuple[float, float], ...]

    def legs(self) -> list[float]:
        pts = [*self.waypoints, self.waypoints[0]]
        return [_distance_m(a, b) for a, b in itertools.pairwise(pts)]

    @property
    def length_m(self) -> float:
        return sum(self.legs())

    def position(self, distance_m: float) -> tuple[float, float]:
        """Where a vehicle is after driving ``distance_m`` from the first waypoint."""
        remaining = distance_m % self.length_m
        pts = [*self.waypoints, self.waypoints[0]]
        for (a, b), leg in zip(itertools.pairwise(pts), self.legs(), strict=True):
            if remaining <= leg:
                f = remaining / leg if leg else 0.0
                return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
            remaining -= leg
        return self.waypoints[0]


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(h))


# A parcel van's round from the depot in Moosach through Schwabing, the centre and Haidhausen.
MUNICH_DELIVERY_ROUND = Route(
    (
        (48.1797, 11.5112),  # depot, Moosach
        (48.1650, 11.5560),  # Olympiapark
        (48.1620, 11.5860),  # Schwabing, Münchner Freiheit
        (48.1502, 11.5810),  # Universität
        (48.1374, 11.5755),  # Marienplatz
        (48.1300, 11.6000),  # Haidhausen, Wiener Platz
        (48.1270, 11.6040),  # Ostbahnhof
        (48.1402, 11.5600),  # Hauptbahnhof
    )
)
