"""Disk projection: how long until the database's file system is full, at today's rate.

``DiskWatch`` samples the database's size (the file and its WAL) and the free space of its file
system every ``sample_every_s``, keeps the samples of the last ``window_s``, and ``project``
turns them into one ``DiskProjection``: the growth rate over the window (first to last sample),
"disk full in about N days" (free ÷ rate), and a level with the thresholds crossed. The same
projection feeds ``einblick status``, the TUI overview, the gateway's log (once per change of
level) and the Prometheus metrics, and carries its own German and English sentence (Babel formats
the numbers and durations), so no two places can word or compute it differently.

The rate is the file's growth, which is what fills the disk: after retention deletes rows, SQLite
reuses the freed pages before the file grows again, so the projection goes to "not growing" until
they are used up. Samples live in memory: after a restart the projection needs ``min_span_s``
of new samples before it shows a rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Literal

from babel.dates import format_timedelta
from babel.numbers import format_percent
from babel.units import format_unit
from pydantic import BaseModel, ConfigDict

from gateway.config import DiskConfig

__all__ = ["DiskProjection", "DiskReading", "DiskThresholds", "DiskWatch", "measure", "project"]

log = logging.getLogger(__name__)

_LOCALES = {"de": "de_DE", "en": "en_GB"}
_DAY = 86_400.0


class DiskReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float  # unix time of the sample
    database_bytes: int  # the database file and its WAL
    free_bytes: int  # available to the gateway's user on the database's file system
    total_bytes: int


class DiskThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    warn_days: float = 30.0
    critical_days: float = 7.0
    warn_free_fraction: float = 0.10
    min_span_s: float = 600.0  # a rate needs samples spanning this long


class DiskProjection(BaseModel):
    model_config = ConfigDict(frozen=True)

    database_bytes: int
    free_bytes: int
    total_bytes: int
    free_fraction: float
    window_s: float  # the span of the samples the rate is taken over
    growth_bytes_per_day: float | None  # None: not measured long enough yet
    full_in_s: float | None  # None: unknown, or not growing
    level: Literal["ok", "warning", "critical"]
    warnings: list[Literal["full_soon", "full_very_soon", "low_free"]]
    text: dict[str, str]  # the sentence for status and the TUI, per language


def measure(database: Path) -> DiskReading:
    """The database's size (file + WAL; 0 for what does not exist yet) and its disk's space."""
    size = 0
    for path in (database, database.with_name(database.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            size += path.stat().st_size
    usage = shutil.disk_usage(database.parent)
    return DiskReading(
        at=time.time(), database_bytes=size, free_bytes=usage.free, total_bytes=usage.total
    )


def _bytes(value: float, locale: str) -> str:
    for unit, size in (("digital-gigabyte", 1e9), ("digital-megabyte", 1e6)):
        if abs(value) >= size:
            return format_unit(value / size, unit, length="short", format="#,##0.0", locale=locale)
    return format_unit(
        value / 1e3, "digital-kilobyte", length="short", format="#,##0.0", locale=locale
    )


def _when(seconds: float, locale: str, direction: bool) -> str:
    """ "12 days" ("in 12 Tagen" with direction): days from two days on, as installers count
    them against the thresholds; hours or minutes below."""
    delta = timedelta(seconds=seconds)
    if seconds >= 2 * _DAY:  # granularity day, and a threshold no count of days reaches
        return format_timedelta(
            delta, granularity="day", threshold=1e9, add_direction=direction, locale=locale
        )
    return format_timedelta(delta, threshold=4, add_direction=direction, locale=locale)


def _text(lang: str, p: DiskProjection, thresholds: DiskThresholds) -> str:
    locale = _LOCALES[lang]
    free = _bytes(p.free_bytes, locale)
    share = format_percent(p.free_fraction, format="#,##0.0%", locale=locale)
    if p.growth_bytes_per_day is None:
        wait = format_timedelta(timedelta(seconds=thresholds.min_span_s), locale=locale)
        head = {
            "de": f"Zuwachs noch nicht gemessen (braucht {wait} Messungen); {free} frei ({share})",
            "en": f"growth not measured yet (needs {wait} of samples); {free} free ({share})",
        }[lang]
    elif p.full_in_s is None:
        head = {
            "de": f"die Datenbank wächst derzeit nicht; {free} frei ({share})",
            "en": f"the database is not growing at today's rate; {free} free ({share})",
        }[lang]
    else:
        rate = _bytes(p.growth_bytes_per_day, locale)
        head = {
            "de": f"beim heutigen Zuwachs ist der Datenträger etwa {_when(p.full_in_s, locale, True)}"
            f" voll (die Datenbank wächst um {rate} am Tag; {free} frei, {share})",
            "en": f"disk full in about {_when(p.full_in_s, locale, False)} at today's rate "
            f"(the database grows {rate} a day; {free} free, {share})",
        }[lang]
    if p.level == "ok":
        return head
    advice = {
        "de": "Platz schaffen oder eine kürzere Aufbewahrung einstellen (retention: in "
        "einblick.yaml oder der Richtlinie)",
        "en": "free some space or set a shorter retention (retention: in einblick.yaml or the "
        "policy)",
    }[lang]
    mark = {
        "warning": {"de": "WARNUNG", "en": "WARNING"},
        "critical": {"de": "KRITISCH", "en": "CRITICAL"},
    }
    return f"{mark[p.level][lang]}: {head}; {advice}"


def project(samples: Sequence[DiskReading], thresholds: DiskThresholds) -> DiskProjection:
    """The projection from ``samples`` (oldest first; at least one)."""
    first, last = samples[0], samples[-1]
    span = last.at - first.at
    rate: float | None = None
    full_in: float | None = None
    if span >= thresholds.min_span_s:
        rate = (last.database_bytes - first.database_bytes) / span * _DAY
        if rate > 0:
            full_in = last.free_bytes / rate * _DAY
    fraction = last.free_bytes / last.total_bytes if last.total_bytes else 0.0
    warnings: list[Literal["full_soon", "full_very_soon", "low_free"]] = []
    if full_in is not None and full_in < thresholds.critical_days * _DAY:
        warnings.append("full_very_soon")
    elif full_in is not None and full_in < thresholds.warn_days * _DAY:
        warnings.append("full_soon")
    if fraction < thresholds.warn_free_fraction:
        warnings.append("low_free")
    level: Literal["ok", "warning", "critical"] = (
        "critical" if "full_very_soon" in warnings else "warning" if warnings else "ok"
    )
    partial = DiskProjection(
        database_bytes=last.database_bytes,
        free_bytes=last.free_bytes,
        total_bytes=last.total_bytes,
        free_fraction=fraction,
        window_s=span,
        growth_bytes_per_day=rate,
        full_in_s=full_in,
        level=level,
        warnings=warnings,
        text={},
    )
    return partial.model_copy(
        update={"text": {lang: _text(lang, partial, thresholds) for lang in _LOCALES}}
    )


class DiskWatch:
    """Samples the database's disk; ``projection`` is the latest projection (None before the
    first sample). A change of level is logged once, as a warning while it is not ok."""

    def __init__(
        self,
        database: Path,
        *,
        sample_every_s: float = 60.0,
        window_s: float = _DAY,
        thresholds: DiskThresholds | None = None,
        reader: Callable[[], DiskReading] | None = None,
    ) -> None:
        self.sample_every_s = sample_every_s
        self.window_s = window_s
        self.thresholds = thresholds or DiskThresholds()
        self._read = reader or (lambda: measure(database))
        self._samples: deque[DiskReading] = deque()
        self.projection: DiskProjection | None = None
        self.error: str | None = None

    @classmethod
    def configured(
        cls, database: Path, config: DiskConfig, reader: Callable[[], DiskReading] | None = None
    ) -> DiskWatch:
        """The watch as ``disk:`` in einblick.yaml sets it (hours and percent as an installer
        writes them); a rate needs samples spanning ten intervals, at most ten minutes."""
        return cls(
            database,
            sample_every_s=config.sample_every_s,
            window_s=config.window_h * 3600,
            thresholds=DiskThresholds(
                warn_days=config.warn_days,
                critical_days=config.critical_days,
                warn_free_fraction=config.warn_free_percent / 100,
                min_span_s=min(600.0, 10 * config.sample_every_s),
            ),
            reader=reader,
        )

    def sample(self) -> DiskProjection:
        reading = self._read()
        samples = self._samples
        samples.append(reading)
        while len(samples) > 1 and reading.at - samples[0].at > self.window_s:
            samples.popleft()
        projection = project(samples, self.thresholds)
        previous = self.projection.level if self.projection is not None else "ok"
        if projection.level != previous:
            say = log.info if projection.level == "ok" else log.warning
            say("disk: %s", projection.text["en"])
        self.projection = projection
        return projection

    async def run(self) -> None:
        while True:
            try:
                # stat() and statvfs() can block on a sick disk: never on the loop's thread
                await asyncio.to_thread(self.sample)
                self.error = None
            except OSError as exc:
                self.error = f"cannot measure the database's disk: {exc}"
                log.error("%s", self.error)
            await asyncio.sleep(self.sample_every_s)

    def status(self) -> dict[str, object] | None:
        if self.projection is None:
            return None if self.error is None else {"error": self.error}
        return {**self.projection.model_dump(), "error": self.error}
