"""Sizing for installers: the share of one core a message rate costs, here and on the box."""

from __future__ import annotations

from gateway.bench.pipeline import Result
from gateway.bench.sizing import core_fraction, render_sizing


def _row(system: str, offered: float, cpu_us: float, unique: int) -> Result:
    return Result(system, offered, unique, unique, 0, 0, 1.0, 1.0, 2.0, cpu_us, 50.0, None)


def test_core_fraction() -> None:
    assert core_fraction(500.0, 1_000) == 0.5  # 500 µs × 1,000/s = half a core
    assert core_fraction(500.0, 1_000, 3.5) == 1.75


def test_sizing_scales_by_the_assumed_slowdown_and_says_it_is_assumed() -> None:
    rows = [_row("forwarder", 1_000, 250.0, 1_000), _row("einblick", 1_000, 400.0, 1_000)]
    lines = list(render_sizing(rows, 3.5))
    assert "ASSUMED" in lines[1]
    row = lines[3].split()
    # rate, msg/s, µs/msg, × forwarder, core here, µs there, core there, msg/s per core there
    assert row == ["1,000/s", "1,000", "400", "1.60x", "40%", "1400", "140%", "714"]
    assert "a site at 300 msg/s needs ~42% of one core there" in lines[4]


def test_on_this_box_is_measured_not_assumed() -> None:
    rows = [_row("einblick", 100, 1_000.0, 100)]
    lines = list(render_sizing(rows, 1.0, measured_here=True))
    assert "measured here" in lines[1] and "ASSUMED" not in lines[1]
    assert lines[3].split()[3:8] == ["-", "10%", "1000", "10%", "1,000"]
