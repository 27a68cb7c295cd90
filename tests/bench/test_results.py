"""The benchmark's table: a "max" row is called one only when the generator was not the limit."""

from __future__ import annotations

import dataclasses

from gateway.bench.results import Result, Run, max_rows_valid, render, wake_interval_ms


def _row(system: str, throughput: float, generator_rate: float, left: int = 1000) -> Result:
    return Result(
        system=system,
        offered=0.0,
        published=int(generator_rate),
        unique=int(throughput),
        lost=None,
        duplicates=None,
        seconds=1.0,
        p50_ms=1.0,
        p99_ms=2.0,
        cpu_us=300.0,
        rss_mb=20.0,
        log_bytes=None,
        generator_rate=generator_rate,
        backlog_left=left,
    )


def test_max_row_needs_three_times_the_fastest_system() -> None:
    enough = Run([_row("forwarder", 3_000, 9_000), _row("einblick", 2_000, 30_000)], None)
    short = Run([_row("forwarder", 3_000, 8_999), _row("einblick", 2_000, 30_000)], None)
    assert max_rows_valid(enough) == (True, 3_000)
    assert max_rows_valid(short) == (False, 3_000)
    assert any(line.startswith(f"{'einblick':<16} {'max':>9}") for line in render(enough))
    lines = list(render(short))
    assert any(line.startswith(f"{'einblick':<16} {'gen-bound':>9}") for line in lines)
    assert any(line.startswith("NOT a maximum") for line in lines)


def test_max_row_that_drained_its_backlog_is_not_a_maximum() -> None:
    dry = Run([_row("forwarder", 3_000, 30_000, left=0)], None)
    assert max_rows_valid(dry) == (False, 3_000)


def _at_1000(system: str, cpu_us: float, p99_ms: float) -> Result:
    """A row of a 1,000 msg/s run that lost nothing."""
    return dataclasses.replace(
        _row(system, 1_000, 1_000), offered=1_000.0, lost=0, cpu_us=cpu_us, p99_ms=p99_ms
    )


def test_pacing_is_held_to_the_unpaced_gateway_of_the_same_run() -> None:
    run = Run([_at_1000("einblick", 300.0, 4.0), _at_1000("einblick-unpaced", 400.0, 2.5)], None)
    lines = list(render(run))
    at = lines.index(
        "What pacing saves: Einblick against itself with pipeline.wake_interval_ms 0, same run:"
    )
    assert lines[at + 1] == "  at   1,000/s: CPU 0.75x per message, p50 +0.0 ms, p99 +1.5 ms"
    # Without the unpaced run, no such comparison is claimed.
    assert not any(
        "pacing" in line for line in render(Run([_at_1000("einblick", 300.0, 4.0)], None))
    )


def test_a_gateway_with_another_wake_interval_is_named_by_it_against_the_forwarder() -> None:
    run = Run([_at_1000("forwarder", 150.0, 1.0), _at_1000("einblick-wake10", 180.0, 12.0)], None)
    lines = list(render(run))
    assert (
        "  at   1,000/s (wake 10 ms): throughput 1.00x, p99 +11.0 ms, CPU 1.20x per message"
        in lines
    )
    # Only the default gateway is compared with the unpaced one.
    assert not any("pacing" in line for line in lines)
    assert [wake_interval_ms(s) for s in ("einblick", "einblick-unpaced", "einblick-wake5")] == [
        None,
        0,
        5,
    ]
    assert wake_interval_ms("einblick-wake50") == 50  # the configuration's own limit
    assert wake_interval_ms("einblick-wake51") is None
    assert wake_interval_ms("einblick-wake" + "9" * 5000) is None  # no int() of 5,000 digits
    assert wake_interval_ms("einblick-wake٣") is None  # a digit, but not one a YAML number takes
