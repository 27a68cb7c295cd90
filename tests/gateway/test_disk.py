"""The disk projection with injected times and sizes: rate, "full in N days", thresholds, the
wording (de/en), the window, the log line on a change of level, status and metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import DiskConfig
from gateway.operations.disk import DiskReading, DiskThresholds, DiskWatch, project
from gateway.operations.metrics import render
from gateway.operations.status_text import render_status

GB = 1_000_000_000
HERE = Path(__file__)  # never read: the sizes are injected
DAY = 86_400.0
T = 1_800_000_000.0
THRESHOLDS = DiskThresholds()  # warn < 30 days, critical < 7 days, < 10 % free


def _readings(grow_per_day: int, free: int, total: int = 100 * GB) -> list[DiskReading]:
    """Two readings a day apart: the database grew by ``grow_per_day``."""
    return [
        DiskReading(at=T, database_bytes=GB, free_bytes=free, total_bytes=total),
        DiskReading(
            at=T + DAY,
            database_bytes=GB + grow_per_day,
            free_bytes=free,
            total_bytes=total,
        ),
    ]


@pytest.mark.parametrize(
    ("grow_per_day", "free", "days", "level", "warnings"),
    [
        (1 * GB, 60 * GB, 60.0, "ok", []),
        (1 * GB, 12 * GB, 12.0, "warning", ["full_soon"]),
        (1 * GB, 3 * GB, 3.0, "critical", ["full_very_soon", "low_free"]),
        (0, 5 * GB, None, "warning", ["low_free"]),
        (-GB, 50 * GB, None, "ok", []),  # shrinking (after retention): not growing
    ],
)
def test_projection_rate_days_and_level(
    grow_per_day: int, free: int, days: float | None, level: str, warnings: list[str]
) -> None:
    p = project(_readings(grow_per_day, free), THRESHOLDS)
    assert p.growth_bytes_per_day == pytest.approx(grow_per_day, rel=1e-6)
    if days is None:
        assert p.full_in_s is None
    else:
        assert p.full_in_s == pytest.approx(days * DAY, rel=1e-6)
    assert p.level == level
    assert p.warnings == warnings


def test_the_sentence_says_when_in_both_languages() -> None:
    p = project(_readings(1 * GB, 12 * GB), THRESHOLDS)
    assert p.text["en"].startswith("WARNING: disk full in about 12 days at today's rate")
    assert "the database grows 1.0 GB a day; 12.0 GB free, 12.0%" in p.text["en"]
    assert "etwa in 12 Tagen voll" in p.text["de"]
    assert "1,0\xa0GB am Tag" in p.text["de"]  # Babel: a no-break space
    critical = project(_readings(1 * GB, 3 * GB), THRESHOLDS)
    assert critical.text["en"].startswith("CRITICAL: disk full in about 3 days")
    assert "set a shorter retention" in critical.text["en"]
    still = project(_readings(0, 60 * GB), THRESHOLDS)
    assert still.text["en"] == "the database is not growing at today's rate; 60.0 GB free (60.0%)"


def test_no_rate_before_the_samples_span_long_enough() -> None:
    short = [
        DiskReading(at=T, database_bytes=GB, free_bytes=GB, total_bytes=100 * GB),
        DiskReading(at=T + 60, database_bytes=2 * GB, free_bytes=GB, total_bytes=100 * GB),
    ]
    p = project(short, THRESHOLDS)
    assert p.growth_bytes_per_day is None and p.full_in_s is None
    assert p.text["en"].startswith("WARNING: growth not measured yet (needs 10 minutes of samples)")


class _Disk:
    """Injected clock and sizes: each reading advances ten minutes."""

    def __init__(self) -> None:
        self.at = T
        self.database = GB
        self.free = 80 * GB

    def read(self) -> DiskReading:
        self.at += 600
        return DiskReading(
            at=self.at, database_bytes=self.database, free_bytes=self.free, total_bytes=100 * GB
        )


@pytest.fixture
def disk() -> Iterator[_Disk]:
    yield _Disk()


def test_the_rate_is_taken_over_the_window_only(disk: _Disk) -> None:
    watch = DiskWatch(HERE, window_s=3600, reader=disk.read)
    for _ in range(6):  # an hour of fast growth, 1 GB per ten minutes
        disk.database += GB
        disk.free -= GB
        watch.sample()
    fast = watch.projection
    assert fast is not None and fast.growth_bytes_per_day == pytest.approx(144 * GB)
    for _ in range(7):  # then an hour and more of none: the fast hour leaves the window
        watch.sample()
    slow = watch.projection
    assert slow is not None and slow.growth_bytes_per_day == 0 and slow.full_in_s is None


def test_a_change_of_level_is_logged_once(disk: _Disk, caplog: pytest.LogCaptureFixture) -> None:
    watch = DiskWatch(HERE, reader=disk.read)
    caplog.set_level(logging.INFO, logger="gateway.operations.disk")
    watch.sample()
    disk.free = 5 * GB  # under 10 % free
    watch.sample()
    watch.sample()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "WARNING" in warnings[0].getMessage()
    disk.free = 50 * GB
    watch.sample()
    assert caplog.records[-1].levelno == logging.INFO


def test_status_and_metrics_show_the_projection(disk: _Disk) -> None:
    watch = DiskWatch(HERE, reader=disk.read)
    watch.sample()
    disk.database += GB
    disk.free = 10 * GB + 1
    watch.sample()  # 1 GB in ten minutes: full in ~1.4 hours
    status = watch.status()
    assert status is not None
    text = render(_status(status))
    assert f"einblick_disk_free_bytes {10 * GB + 1}" in text
    assert f"einblick_database_bytes {2 * GB}" in text
    full_in = float(text.split("\neinblick_disk_full_in_seconds ")[1].split("\n")[0])
    assert full_in == pytest.approx((10 * GB + 1) / GB * 600, rel=1e-6)
    assert "disk: CRITICAL: disk full in about 100 minutes" in render_status(_status(status))


def _status(disk: object) -> dict[str, object]:
    """The smallest gateway status around ``disk``."""
    return {
        "instance": "box",
        "started_at": T,
        "key_fingerprint": "ab:cd",
        "device_broker": {"connected": True},
        "pipeline": {
            k: 0 for k in ("received", "entries", "shared", "altered", "withheld", "committed")
        }
        | {"failing_closed": False, "outbox_full": False},
        "upstreams": [],
        "policies": [],
        "disk": disk,
    }


def test_the_watch_is_set_as_einblick_yaml_says(disk: _Disk) -> None:
    config = DiskConfig(
        sample_every_s=30, window_h=2, warn_days=20, critical_days=5, warn_free_percent=25
    )
    watch = DiskWatch.configured(HERE, config, reader=disk.read)
    assert (watch.sample_every_s, watch.window_s) == (30, 7200)
    assert watch.thresholds == DiskThresholds(
        warn_days=20, critical_days=5, warn_free_fraction=0.25, min_span_s=300
    )
    assert DiskWatch.configured(HERE, DiskConfig()).thresholds.min_span_s == 600  # at most 10 min
    watch.sample()
    disk.free = 20 * GB  # 20 % free: under the configured 25 %
    projection = watch.sample()
    assert projection.level == "warning"
