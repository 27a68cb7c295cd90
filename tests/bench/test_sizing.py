"""Sizing for installers: the share of one core a message rate costs, here and on the box."""

from __future__ import annotations

import dataclasses

from gateway.bench.results import Result
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


def test_two_paced_rows_give_a_fixed_part_and_a_cost_per_message() -> None:
    # 100/s at 1,500 µs = 15 % of a core; 1,000/s at 600 µs = 60 %: 10 % fixed + 500 µs/msg.
    rows = [_row("einblick", 100, 1_500.0, 100), _row("einblick", 1_000, 600.0, 1_000)]
    last = list(render_sizing(rows, 2.0))[-1]
    assert "Between 100/s and 1,000/s (the line through both rows): ~10% of a core here" in last
    assert "plus ~500 µs per message; below 100/s the fixed part shrinks" in last
    # (0.10 + 500 µs × 300/s) × 2 = 50 % of a core twice as slow
    assert "A site at 300 msg/s needs ~50% of one core there" in last


def test_on_this_box_is_measured_not_assumed() -> None:
    rows = [_row("einblick", 100, 1_000.0, 100)]
    lines = list(render_sizing(rows, 1.0, measured_here=True))
    assert "measured here" in lines[1] and "ASSUMED" not in lines[1]
    assert lines[3].split()[3:8] == ["-", "10%", "1000", "10%", "1,000"]


def test_the_idle_figure_is_the_measured_one_here_and_scaled_there() -> None:
    first = _row("einblick", 100, 1_500.0, 100)
    rows = [dataclasses.replace(first, idle_share=0.002), _row("einblick", 1_000, 600.0, 1_000)]
    lines = list(render_sizing(rows, 2.0))
    assert "  Idle (no messages): 0.20% of a core here, 0.40% there." in lines
    assert not any("Idle" in line for line in render_sizing([first], 2.0))


def test_one_row_sizes_a_site_only_from_the_safe_side_and_says_which() -> None:
    # From 100/s (a higher cost per message than at 300/s): too large a share, the safe side.
    (low,) = [line for line in render_sizing([_row("einblick", 100, 1_000.0, 100)], 1.0)][-1:]
    assert "at the 100/s row's CPU per message" in low and "so this errs high" in low
    # From 1,000/s: too small a share, and said so.
    (high,) = [line for line in render_sizing([_row("einblick", 1_000, 400.0, 1_000)], 1.0)][-1:]
    assert "so this errs LOW: run a rate at or below 300/s to size it" in high
    # A max row alone (full batches, the lowest cost per message): no site is sized from it.
    (maxed,) = [line for line in render_sizing([_row("einblick", 0, 70.0, 12_000)], 1.0)][-1:]
    assert maxed.startswith("  No paced row to size a site from")
