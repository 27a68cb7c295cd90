"""The benchmark's table: a "max" row is called one only when the generator was not the limit."""

from __future__ import annotations

from gateway.bench.results import Result, Run, max_rows_valid, render


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
