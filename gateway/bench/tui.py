"""Benchmark the TUI on a big log: open time, memory, scrolling, keeping up with 2,000 entries/s.

    python -m gateway.bench.tui [--entries 1000000] [--db PATH] [--rate 2000] [--seconds 10]
                                [--pages 200]

Builds (or reuses, with ``--db``) a log of ``--entries`` entries written through the real
``LogWriter`` (``gateway.bench.sample``), then runs the real app headless (``App.run_test``):

- open: from creating the app until the newest rows are on screen; RSS before and after;
- scroll: page up ``--pages`` times and jump to the very first row, each until its rows are shown;
- follow: a separate process appends ``--rate`` entries per second (batches every 100 ms, each
  entry stamped with the wall clock) while the app follows; the lag is the age of the newest row
  on screen, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.bench.sample import NAMES, T0, SampleLog
from gateway.log.reader import Reader
from tui.app import EinblickApp
from tui.local import LocalSource

__all__ = ["build", "main", "measure", "rss_mb"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(path: Path, entries: int) -> float:
    started = time.perf_counter()
    log = SampleLog(path)
    have = Reader.over(log.conn, path).count()
    if have < entries:
        log.add(
            entries - have,
            start=T0 + timedelta(seconds=have * 0.05),
            step=timedelta(seconds=0.05),
            batch=5000,
        )
    log.close()
    return time.perf_counter() - started


def _writer(path: str, rate: int, seconds: float) -> None:
    log = SampleLog(Path(path))
    per_batch = max(rate // 10, 1)
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        log.write(log.drafts(per_batch, now, timedelta(microseconds=1)))
        next_at += 0.1
        time.sleep(max(next_at - time.monotonic(), 0))
    log.close()


async def measure(path: Path, rate: int, seconds: float, pages: int = 200) -> dict[str, float]:
    out: dict[str, float] = {}
    out["rss_before_mb"] = rss_mb()
    started = time.perf_counter()
    app = EinblickApp(LocalSource(path, names=NAMES), lang="de", tz=UTC)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.log_lines
        while not (log.count and log.row_at(log.count - 1) is not None):
            await pilot.pause(0.005)
        out["open_s"] = time.perf_counter() - started
        out["rows"] = log.count
        out["rss_open_mb"] = rss_mb()

        times = []
        for _ in range(pages):
            t0 = time.perf_counter()
            await pilot.press("pageup")
            while log.row_at(round(log.scroll_y)) is None:
                await pilot.pause(0.001)
            await app.workers.wait_for_complete()
            times.append(time.perf_counter() - t0)
        out["page_up_ms_median"] = statistics.median(times) * 1000
        out["page_up_ms_max"] = max(times) * 1000
        t0 = time.perf_counter()
        await pilot.press("home")
        while log.row_at(0) is None:
            await pilot.pause(0.001)
        out["home_ms"] = (time.perf_counter() - t0) * 1000
        out["rss_scrolled_mb"] = rss_mb()

        await pilot.press("end")
        await app.workers.wait_for_complete()
        before = log.count
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            f"from gateway.bench.tui import _writer; _writer({str(path)!r}, {rate}, {seconds})",
        )
        lags: list[float] = []
        while writer.returncode is None:
            await pilot.pause(0.05)
            row = log.row_at(log.count - 1)
            if row is not None and log.count > before:
                lags.append(time.time() - row.at_us / 1_000_000)
        await writer.wait()
        await pilot.pause(0.6)
        out["follow_rows_added"] = log.count - before
        out["follow_rate_per_s"] = (log.count - before) / seconds
        out["lag_s_median"] = statistics.median(lags) if lags else float("nan")
        out["lag_s_p99"] = sorted(lags)[int(len(lags) * 0.99) - 1] if lags else float("nan")
        out["lag_s_max"] = max(lags) if lags else float("nan")
        out["rss_end_mb"] = rss_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or create) this database")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pages", type=int, default=200, help="page-up presses timed")
    args = parser.parse_args(argv)
    path = args.db or Path(tempfile.mkdtemp(prefix="einblick-bench-")) / "einblick.db"
    built = build(path, args.entries)
    print(f"log: {path} ({args.entries:,} entries; built/checked in {built:.1f} s)")
    figures = asyncio.run(measure(path, args.rate, args.seconds, args.pages))
    for key, value in figures.items():
        print(f"{key:>22}: {value:,.3f}")
    ok = figures["open_s"] < 2.0 and figures["lag_s_max"] < 1.0
    print("PASS" if ok else "FAIL: open under 2 s and lag under 1 s expected", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
