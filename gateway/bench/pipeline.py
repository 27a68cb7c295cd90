"""``einblick bench``: the whole gateway against a plain bridge, measured in the same run.

For each system and offered rate, a fresh pair of loopback brokers A (devices) and B (the cloud):
load devices publish ~200-byte JSON to A at QoS 1, a probe subscribed on B measures what arrives
and how late (from the device's publish time in the payload). Systems:
``bridge``, ``forwarder`` and ``einblick`` (gateway/bench/systems.py);
``einblick-unpaced`` and ``einblick-wakeN`` only when named in ``--systems``.

Figures per run: sustained throughput (distinct messages arriving at B per second), latency
p50/p99, CPU per message of the forwarding process (for the bridge: broker A, which does the
bridging), its RSS, and for Einblick the bytes of log written per message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from gateway.bench.attach import Attach, AttachError
from gateway.bench.commits import measure_commits, render_commits
from gateway.bench.load import ceiling
from gateway.bench.process_stats import cpu_seconds, rss_mb, thread_cpu_seconds
from gateway.bench.repeats import render_repeats, rotated
from gateway.bench.results import (
    GENERATOR_PROCESSES,
    Result,
    Run,
    render,
)
from gateway.bench.sizing import PI_SLOWDOWN, render_sizing
from gateway.bench.systems import DEVICES, SYSTEM_CHOICES, SYSTEMS, System, unknown_systems
from gateway.operations.control import request
from gateway.operations.status_model import LatencySummary, Status
from simulators.load import LatencyProbe, build_load

__all__ = ["main", "run_bench"]

IDLE_S = 3.0  # seconds of an idle gateway measured before its first rate
IDLE_SETTLE_S = 2.0  # after its start: two checkpoint intervals


def _measure_max(
    system: System, duration: float, processes: int, attach: Attach | None = None
) -> Result:
    """The system's maximum: a backlog it cannot run out of, drained while nothing else runs.

    The receiving side is frozen (SIGSTOP: the system, or broker B for the bridge) while the
    generator writes as fast as it goes into broker A for half the duration; then it is thawed
    and what reaches B per second is measured over ``duration`` s, after a second of warm-up.
    Offering the same flood live instead measures broker A ingesting tens of thousands of
    messages a second on the same cores, not the system. Lost/dup are not counted: the rest of
    the backlog is left behind, with the system, when the row ends."""
    frozen = system.b.pid if system.name == "bridge" else system.pid
    assert frozen is not None
    with LatencyProbe(host="127.0.0.1", port=system.b_port, topic_filter="#", qos=1) as probe:
        generator = system.load(0.0, max(1.0, duration / 2), processes)
        generator.start()
        os.kill(frozen, signal.SIGSTOP)
        try:
            generator.go()
            offered = generator.wait()
        finally:
            os.kill(frozen, signal.SIGCONT)
        time.sleep(1.0)  # warm-up: batches grow to their steady size
        with _attached(attach, system, 0.0):
            cpu0, count0, t0 = cpu_seconds(system.pid), probe.report({}).unique, time.monotonic()
            time.sleep(duration)
            cpu1, count1, t1 = cpu_seconds(system.pid), probe.report({}).unique, time.monotonic()
        report = probe.report(offered.sent)
    arrived = count1 - count0
    return Result(
        system=system.name,
        offered=0.0,
        published=offered.published,
        unique=arrived,
        lost=None,
        duplicates=None,
        seconds=t1 - t0,
        p50_ms=report.p50_ms,
        p99_ms=report.p99_ms,
        cpu_us=(cpu1 - cpu0) / max(arrived, 1) * 1e6,
        rss_mb=rss_mb(system.pid),
        log_bytes=None,
        generator_rate=offered.offered_rate,
        backlog_left=offered.published - count1,
    )


def _attached(
    attach: Attach | None, system: System, rate: float
) -> contextlib.AbstractContextManager[None]:
    if attach is None:
        return contextlib.nullcontext()
    return attach.running(system.pid, system.name, rate)


def _measure(
    system: System, rate: float, duration: float, processes: int, attach: Attach | None = None
) -> Result:
    """Offer ``rate`` msg/s for ``duration`` s, wait for every message to arrive, and measure
    (``rate`` 0: the system's maximum, ``_measure_max``). ``attach``: a tool run against the
    system while its load runs (gateway/bench/attach.py)."""
    if rate <= 0:
        return _measure_max(system, duration, processes, attach)
    cpu0 = cpu_seconds(system.pid)
    log0 = system.log_bytes()
    with (
        LatencyProbe(host="127.0.0.1", port=system.b_port, topic_filter="#", qos=1) as probe,
        _attached(attach, system, rate),  # first: a tool that fails leaves no load waiting
    ):
        generator = system.load(rate, duration, processes)
        generator.start()
        started = time.monotonic()
        generator.go()
        offered = generator.wait()
        probe.wait_for(offered.published, 180.0)
        seconds = probe.span_seconds() or (time.monotonic() - started)
        report = probe.report(offered.sent)
    # Let the gateway commit its checkpoint before the log is weighed.
    time.sleep(1.2)
    cpu = cpu_seconds(system.pid) - cpu0
    log_bytes = system.log_bytes() - log0
    return Result(
        system=system.name,
        offered=rate,
        published=offered.published,
        unique=report.unique,
        lost=report.lost,
        duplicates=report.duplicates,
        seconds=seconds,
        p50_ms=report.p50_ms,
        p99_ms=report.p99_ms,
        cpu_us=cpu / max(report.unique, 1) * 1e6,
        rss_mb=rss_mb(system.pid),
        log_bytes=(log_bytes / max(report.unique, 1)) if system.database is not None else None,
        generator_rate=offered.offered_rate,
    )


def _windows(reply: Status | Mapping[str, object]) -> dict[str, LatencySummary]:
    """The gateway's own latency windows, by stage, for the benchmark's recipient (its
    ``status`` reply, read through the typed model)."""
    status = Status.read(reply)
    windows = {}
    if status.pipeline is not None and status.pipeline.latency is not None:
        windows["received → committed"] = status.pipeline.latency
    for up in status.upstreams:
        if up.recipient == "cloud" and up.latency is not None:
            windows["outbox → acknowledged"] = up.latency
    return windows


def _stages(
    before: Mapping[str, LatencySummary], after: Mapping[str, LatencySummary]
) -> dict[str, tuple[float, float]]:
    """(p50, p99) per stage, only where every sample in the window came from this rate's run
    (the gateway keeps its last 10,000 messages, across rates)."""
    stages = {}
    for stage, window in after.items():
        earlier = before.get(stage)
        fresh = window.count - (0 if earlier is None else earlier.count)
        if window.p50_ms is not None and window.p99_ms is not None and fresh >= window.window:
            stages[stage] = (window.p50_ms, window.p99_ms)
    return stages


async def _idle_share(system: System, seconds: float = IDLE_S) -> float:
    """The share of one core the gateway takes with no messages at all (its timers: the
    checkpoint, the disk watch, the links' keep-alives), after its start-up has settled (the
    first checkpoint signed, the status answered)."""
    await asyncio.sleep(IDLE_SETTLE_S)
    cpu0, started = thread_cpu_seconds(system.pid), time.monotonic()
    await asyncio.sleep(seconds)
    return max(0.0, thread_cpu_seconds(system.pid) - cpu0) / (time.monotonic() - started)


async def _run_system(
    name: str,
    root: Path,
    rates: list[float],
    duration: float,
    processes: int,
    *,
    attach: Attach | None = None,
) -> list[Result]:
    """Each rate on a fresh system (new brokers, new database): a "max" row leaves a backlog."""
    results = []
    for n, rate in enumerate(rates):
        system = System(name, root / f"{name}-{n}")
        await system.start()
        try:
            before = {}
            idle: float | None = None
            if system.control_socket is not None:
                if n == 0 and name == "einblick":
                    idle = await _idle_share(system)
                before = _windows(await request(system.control_socket, "status"))
            result = await asyncio.to_thread(_measure, system, rate, duration, processes, attach)
            if system.control_socket is not None:
                after = _windows(await request(system.control_socket, "status"))
                result = dataclasses.replace(result, stages=_stages(before, after), idle_share=idle)
            results.append(result)
        finally:
            await system.stop()
    return results


def run_bench(
    rates: list[float],
    duration: float,
    systems: tuple[str, ...] = SYSTEMS,
    processes: int = GENERATOR_PROCESSES,
    *,
    attach: Attach | None = None,
    commits: bool = True,
) -> Run:
    root = Path(tempfile.mkdtemp(prefix="einblick-bench-"))
    try:
        top = None
        if any(rate <= 0 for rate in rates):
            top = asyncio.run(ceiling(root, duration, DEVICES, processes))
        results: list[Result] = []
        for name in systems:
            results += asyncio.run(
                _run_system(name, root, rates, duration, processes, attach=attach)
            )
        return Run(results, top, measure_commits(root) if commits else None)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def soak(rate: float, seconds: float, samples: int = 20) -> list[tuple[float, float, int]]:
    """Run the gateway at ``rate`` for ``seconds``; sample (elapsed s, RSS MB, messages) as it goes."""
    root = Path(tempfile.mkdtemp(prefix="einblick-soak-"))

    async def run() -> list[tuple[float, float, int]]:
        system = System("einblick", root / "einblick")
        await system.start()
        try:
            fleet = build_load(DEVICES, prefix="bench")
            publisher = system.publisher(fleet, rate, seconds, "soak", 60.0)
            points: list[tuple[float, float, int]] = []
            with LatencyProbe(
                host="127.0.0.1", port=system.b_port, topic_filter="#", qos=1
            ) as probe:
                worker = threading.Thread(target=publisher.run, name="soak-load")
                started = time.monotonic()
                worker.start()
                for _ in range(samples):
                    await asyncio.sleep(seconds / samples)
                    arrived = probe.report({}).unique
                    points.append((time.monotonic() - started, rss_mb(system.pid), arrived))
                    print(
                        f"  {points[-1][0]:7.0f} s  RSS {points[-1][1]:6.1f} MB  {arrived:>10,} messages",
                        flush=True,
                    )
                await asyncio.to_thread(worker.join)
            return points
        finally:
            await system.stop()

    try:
        return asyncio.run(run())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="einblick bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", default="100,1000,0", help="offered msg/s, 0 = as fast as possible"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per rate")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="instead: run Einblick this long at --soak-rate and watch its memory",
    )
    parser.add_argument("--soak-rate", type=float, default=2000.0)
    parser.add_argument(
        "--attach",
        metavar="COMMAND",
        help="run COMMAND against each system while its load runs, e.g. a profiler: "
        "'perf record -F 1999 -p {pid} -o {system}-{rate}.data' ({pid}, {system}, {rate} and, "
        "with --repeat, {round} filled in; it gets SIGINT when the rate ends). Its overhead is in "
        "that run's figures.",
    )
    parser.add_argument(
        "--slowdown",
        type=float,
        default=None,
        help=f"assumed CPU slowdown of the target box per core against this one (default "
        f"{PI_SLOWDOWN:g}: a Raspberry-Pi-class box)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="measure the systems N times in turn, their order rotated each round, and print each "
        "figure's median and range (ratios to the forwarder are taken within each round); no "
        "sizing and no disk timing, which are a single run's",
    )
    parser.add_argument(
        "--on-this-box",
        action="store_true",
        help="size for the machine the benchmark runs on (no slowdown assumed)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: give 1 or more rounds")
    if args.repeat > 1 and (args.soak or args.on_this_box or args.slowdown is not None):
        parser.error(
            "--repeat summarises benchmark rows: --soak, --on-this-box and --slowdown take one run"
        )
    if args.soak:
        print(f"soak: Einblick at {args.soak_rate:,.0f} msg/s for {args.soak:,.0f} s", flush=True)
        points = soak(args.soak_rate, args.soak)
        # Growth is measured from the first sample: start-up (imports, caches filling) is not a leak.
        first, last = points[0][1], points[-1][1]
        peak = max(p[1] for p in points)
        print(
            f"RSS first sample {first:.1f} MB, last {last:.1f} MB, peak {peak:.1f} MB: growth {100 * (last - first) / first:+.1f}%"
        )
        return 0
    rates = [float(r) for r in args.rates.split(",")]
    if len(set(rates)) < len(rates):
        parser.error(
            f"--rates {args.rates}: each rate once (a row is known by its system and rate)"
        )
    attach = None
    if args.attach is not None:
        try:
            attach = Attach.parse(args.attach)
        except AttachError as exc:
            parser.error(str(exc))
    systems = tuple(s for s in args.systems.split(",") if s)
    if unknown := unknown_systems(systems):
        parser.error(f"unknown system {', '.join(unknown)}: choose from {SYSTEM_CHOICES}")
    if not systems or len(set(systems)) < len(systems):
        parser.error(f"--systems {args.systems!r}: name each system once, e.g. forwarder,einblick")
    print(
        f"machine: {os.cpu_count()} cores, {platform()}; {DEVICES} devices, ~200-byte JSON, QoS 1",
        flush=True,
    )
    if attach is not None:
        print(f"attached to each system while its load runs: {args.attach}", flush=True)
        print("  (the figures below include its own cost)", flush=True)
    try:
        if args.repeat > 1:
            _repeat(args.repeat, rates, args.duration, systems, attach)
            return 0
        run = run_bench(rates, args.duration, systems, attach=attach)
    except AttachError as exc:
        parser.exit(2, f"einblick bench: {exc}\n")
    for line in render(run):
        print(line)
    slowdown = 1.0 if args.on_this_box else PI_SLOWDOWN if args.slowdown is None else args.slowdown
    for line in render_sizing(run.results, slowdown, measured_here=args.on_this_box):
        print(line)
    if run.commits is not None:
        for line in render_commits(run.commits):
            print(line)
    return 0


def _repeat(
    rounds: int,
    rates: list[float],
    duration: float,
    systems: tuple[str, ...],
    attach: Attach | None,
) -> None:
    """``--repeat``: each round's table as it ends, then the medians (gateway/bench/repeats.py).
    The sizing and the disk's commit timing are a single run's: run without ``--repeat`` for them."""
    runs = []
    for n in range(rounds):
        order = rotated(systems, n)
        print(
            f"\nRound {n + 1} of {rounds} ({', '.join(order)}), "
            f"load average {os.getloadavg()[0]:.2f} at its start:",
            flush=True,
        )
        in_round = attach.in_round(n + 1) if attach is not None else None
        runs.append(run_bench(rates, duration, order, attach=in_round, commits=False))
        for line in render(runs[-1]):
            print(line, flush=True)
    for line in render_repeats(runs, systems):
        print(line)


def platform() -> str:
    import platform as _platform  # noqa: PLC0415 - only for the banner

    return (
        f"{_platform.python_implementation()} {_platform.python_version()}, {_platform.machine()}"
    )


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
