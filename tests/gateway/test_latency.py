"""The latency window behind `einblick status` and the metrics: bounded, and its percentiles
are those of the last messages only."""

from __future__ import annotations

from dataclasses import asdict

from gateway.messages.latency import LatencyWindow


def test_empty_window_reports_no_figures_rather_than_zero() -> None:
    summary = LatencyWindow().summary()
    # As the status reply carries it: nulls, not zeros that would read as "instant".
    assert asdict(summary) == {
        "count": 0,
        "window": 0,
        "p50_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }


def test_percentiles_cover_only_the_last_messages_and_memory_stays_bounded() -> None:
    window = LatencyWindow(size=100)
    for _ in range(1000):
        window.add(5.0)  # an old slow period, pushed out of the window
    for i in range(100):
        window.add((i + 1) / 1000)  # 1 ms … 100 ms
    summary = window.summary()
    assert summary.count == 1100 and summary.window == 100
    assert summary.p50_ms is not None and 50.0 <= summary.p50_ms <= 51.0
    assert summary.p99_ms is not None and 99.0 <= summary.p99_ms <= 100.0
    assert summary.max_ms == 100.0


def test_a_single_sample_is_every_percentile() -> None:
    window = LatencyWindow()
    window.add(0.0025)
    assert window.summary().p50_ms == window.summary().p99_ms == 2.5
