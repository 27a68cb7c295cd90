"""How simulated things change over time: plausible days, and a seed replays exactly."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from simulators.behaviour import (
    CET,
    MUNICH_DELIVERY_ROUND,
    Route,
    household_power_w,
    occupancy_level,
    oven_temperature,
)


def _t(day: int, hour: int, minute: int = 0) -> float:
    """A time in March 2026 (the 2nd is a Monday), local CET."""
    return datetime(2026, 3, day, hour, minute, tzinfo=CET).timestamp()


@pytest.mark.parametrize(
    ("day", "hour", "minute", "level"),
    [
        (2, 3, 0, 0.0),  # night
        (2, 8, 0, 0.4),  # arriving
        (2, 10, 0, 0.8),
        (2, 12, 30, 0.45),  # lunch
        (2, 18, 0, 0.4),  # leaving
        (7, 11, 0, 0.02),  # Saturday
    ],
)
def test_an_office_fills_and_empties_over_a_working_day(
    day: int, hour: int, minute: int, level: float
) -> None:
    assert occupancy_level(_t(day, hour, minute)) == pytest.approx(level)


def test_an_oven_heats_holds_and_cools_within_each_batch() -> None:
    assert oven_temperature(0.0) == (21.0, True)
    temp, _ = oven_temperature(0.2 * 5400)
    assert 177.5 <= temp <= 182.5  # baking: the setpoint with thermostat ripple
    cooled, heater = oven_temperature(0.99 * 5400)
    assert 21.0 < cooled < 60.0 and heater is False
    assert oven_temperature(5400.0) == oven_temperature(0.0)  # the next batch


def test_a_seed_replays_a_household_exactly_and_the_evening_peaks() -> None:
    times = [_t(2, h) for h in range(24)]
    one = [household_power_w(t, random.Random(7)) for t in times]
    two = [household_power_w(t, random.Random(7)) for t in times]
    assert one == two
    calm = [household_power_w(t, random.Random(s)) for s, t in enumerate(times)]
    assert max(range(24), key=lambda h: calm[h] if calm[h] < 2000 else 0) in (18, 19, 20)


def test_a_route_is_closed_and_driven_at_constant_speed() -> None:
    route = MUNICH_DELIVERY_ROUND
    assert 15_000 < route.length_m < 30_000
    assert route.position(0.0) == route.waypoints[0]
    assert route.position(route.length_m) == pytest.approx(route.waypoints[0])
    square = Route(((0.0, 0.0), (0.0, 0.001)))  # out and back
    half = square.position(square.length_m / 4)
    assert half == pytest.approx((0.0, 0.0005))
