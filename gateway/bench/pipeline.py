"""``einblick bench``: the whole gateway against a plain bridge, measured in the same run.

For each system and offered rate, a fresh pair of loopback brokers A (devices) and B (the cloud):
load devices publish ~200-byte JSON to A at QoS 1, a probe subscribed on B measures what arrives
and how late (from the device's publish time in the payload). Systems:

- ``bridge``: Mosquitto's own bridge A → B (``topic # out 1``), the floor.
- ``forwarder``: a minimal paho-mqtt process, subscribe on A, publish on B, no policy, no log.
- ``einblick``: the gateway (``einblick run``) with the example policies plus the benchmark
  customer; every message decided, explained, chained, committed, covered by a signed checkpoint
  and forwarded after commit, QoS 1 both sides.
- ``einblick-unpaced``: the same with ``pipeline.wake_interval_ms: 0``, every packet waking the
  event loop at once (gateway/messages/pacing.py): what the pacing saves, in the same run;
  ``einblick-wake10`` and the like: another wake interval (ms), latency traded for CPU. Not run
  unless named in ``--systems``.

Figures per run: sustained throughput (distinct messages arriving at B per second), latency
p50/p99, CPU per message of the forwarding process (for the bridge: broker A, which does the
bridging), its RSS, and for Einblick the bytes of log written per message.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from gateway.bench.commits import measure_commits, render_commits
from gateway.bench.load import Generator, ceiling
from gateway.bench.process_stats import cpu_seconds, rss_mb, thread_cpu_seconds
from gateway.bench.results import (
    GENERATOR_PROCESSES,
    MAX_WAKE_MS,
    UNPACED,
    WAKE_PREFIX,
    Result,
    Run,
    render,
    wake_interval_ms,
)
from gateway.bench.sizing import PI_SLOWDOWN, render_sizing
from gateway.config import load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.control import request
from gateway.operations.scaffold import EXAMPLE_RECIPIENTS, InitOptions, init_directory
from gateway.operations.status_model import LatencySummary, Status
from simulators.load import LatencyProbe, LoadDevice, build_load
from simulators.publisher import Publisher

__all__ = ["main", "run_bench"]

SYSTEMS = ("bridge", "forwarder", "einblick")
IDLE_S = 3.0  # seconds of an idle gateway measured before its first rate
IDLE_SETTLE_S = 2.0  # after its start: two checkpoint intervals
DEVICES = 10


def _bench_policy(devices: int) -> str:
    device_lines = "".join(
        f'  - id: load-{i:04d}\n    name: "Lastgerät {i}"\n    kind: load\n    topics:\n'
        f'      - pattern: "bench/load-{i:04d}"\n        stream: telemetry\n'
        for i in range(devices)
    )
    return f"""einblick_policy: 1
customer: bench
name: Benchmark GmbH
language: de
devices:
{device_lines}grants:
  - id: monitoring
    recipient: cloud
    purpose: {{de: "Zustandsüberwachung", en: "Condition monitoring"}}
    legal_basis: contract
    kinds: [load]
    topic: "cloud/{{customer}}/{{device}}"
    fields:
      dev: keep
      seq: keep
      sent_ns: keep
      temperature: {{round: 0.5}}
"""


class _System:
    """One system under test between broker A and broker B."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.entry: tuple[str, tuple[str, ...]] = ("gateway", ())  # the gateway's -m and options
        self.a_port = free_port()
        self.b_port = free_port()
        bridge: tuple[str, ...] = ()
        if name == "bridge":
            bridge = (
                "connection bench-bridge",
                f"address 127.0.0.1:{self.b_port}",
                "topic # out 1",
                "cleansession true",
                "bridge_max_packet_size 0",
                "max_inflight_messages 1000",
            )
        self.a = Mosquitto(MosquittoSettings(root / "a", self.a_port, anonymous=True, extra=bridge))
        self.b = Mosquitto(MosquittoSettings(root / "b", self.b_port, anonymous=True))
        self.process: asyncio.subprocess.Process | None = None
        self.database: Path | None = None
        self.control_socket: Path | None = None

    @property
    def pid(self) -> int:
        if self.name == "bridge":
            pid = self.a.pid
        else:
            assert self.process is not None
            pid = self.process.pid
        assert pid is not None
        return pid

    def publisher(
        self, fleet: list[LoadDevice], rate: float, duration: float, prefix: str, drain: float
    ) -> Publisher:
        """QoS 1 load into broker A: ``rate`` msg/s in total, spread over the fleet."""
        return Publisher(
            fleet,
            host="127.0.0.1",
            port=self.a_port,
            rate=rate / len(fleet),
            qos=1,
            duration=duration,
            client_id_prefix=prefix,
            drain_timeout=drain,
        )

    def load(self, rate: float, duration: float, processes: int) -> Generator:
        """The benchmark's devices publishing into broker A (``rate`` 0: as fast as they go)."""
        return Generator(
            self.a_port,
            rate,
            duration,
            DEVICES,
            "bench",
            processes,
            client_prefix=f"bench-{self.name}",
        )

    def log_bytes(self) -> int:
        """Bytes of the database file once the WAL is folded in (the WAL itself is transient)."""
        if self.database is None:
            return 0
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return self.database.stat().st_size

    async def start(self) -> None:
        self.b.write_files([])
        await self.b.start()
        self.a.write_files([])
        await self.a.start()
        if self.name == "forwarder":
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.bench.forwarder",
                str(self.a_port),
                str(self.b_port),
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
            assert self.process.stdout is not None
            async with asyncio.timeout(10):
                await self.process.stdout.readline()
        elif self.name == "einblick" or wake_interval_ms(self.name) is not None:
            await self._start_einblick()
        await asyncio.sleep(0.3)  # subscriptions and bridge settle

    async def _start_einblick(self) -> None:
        directory = self.root / "edge"
        config_path = init_directory(
            InitOptions(directory, upstream_url=f"mqtt://127.0.0.1:{self.b_port}")
        )
        (directory / "policies" / "bench.yaml").write_text(_bench_policy(DEVICES), encoding="utf-8")
        text = config_path.read_text(encoding="utf-8")
        text = text.replace("  mode: managed ", "  mode: external").replace(
            "  port: 1883", f"  port: {self.a_port}"
        )
        recipients = "".join(
            f"  - name: {name}\n    display_name: {display!r}\n    url: mqtt://127.0.0.1:{self.b_port}\n"
            for name, display in {**EXAMPLE_RECIPIENTS, "cloud": "Bench Cloud"}.items()
        )
        head, _, rest = text.partition("recipients:\n")
        _, _, tail = rest.partition("\noutbox:")
        # Ten load devices carry a plant's traffic: lift the per-device flood limit (100/s default).
        tail = tail.replace(
            "pipeline:\n", "pipeline:\n  device_max_rate: 1000000\n  device_burst: 1000000\n"
        )
        if (wake := wake_interval_ms(self.name)) is not None:
            tail = tail.replace("pipeline:\n", f"pipeline:\n  wake_interval_ms: {wake}\n")
        config_path.write_text(f"{head}recipients:\n{recipients}\noutbox:{tail}", encoding="utf-8")
        config = load_config(config_path)
        self.database, self.control_socket = config.database_path, config.control_socket
        module, options = self.entry
        self.process = await start_gateway(
            config_path, self.root / "gateway.log", upstreams=True, module=module, options=options
        )

    async def stop(self) -> None:
        if self.process is not None:
            await stop_gateway(self.process)
        await self.a.stop()
        await self.b.stop()


def _measure_max(system: _System, duration: float, processes: int) -> Result:
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


def _measure(system: _System, rate: float, duration: float, processes: int) -> Result:
    """Offer ``rate`` msg/s for ``duration`` s, wait for every message to arrive, and measure
    (``rate`` 0: the system's maximum, ``_measure_max``)."""
    if rate <= 0:
        return _measure_max(system, duration, processes)
    cpu0 = cpu_seconds(system.pid)
    log0 = system.log_bytes()
    with LatencyProbe(host="127.0.0.1", port=system.b_port, topic_filter="#", qos=1) as probe:
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


async def _idle_share(system: _System, seconds: float = IDLE_S) -> float:
    """The share of one core the gateway takes with no messages at all (its timers: the
    checkpoint, the disk watch, the links' keep-alives), after its start-up has settled (the
    first checkpoint signed, the status answered)."""
    await asyncio.sleep(IDLE_SETTLE_S)
    cpu0, started = thread_cpu_seconds(system.pid), time.monotonic()
    await asyncio.sleep(seconds)
    return max(0.0, thread_cpu_seconds(system.pid) - cpu0) / (time.monotonic() - started)


async def _run_system(
    name: str, root: Path, rates: list[float], duration: float, processes: int
) -> list[Result]:
    """Each rate on a fresh system (new brokers, new database): a "max" row leaves a backlog."""
    results = []
    for n, rate in enumerate(rates):
        system = _System(name, root / f"{name}-{n}")
        await system.start()
        try:
            before = {}
            idle: float | None = None
            if system.control_socket is not None:
                if n == 0 and name == "einblick":
                    idle = await _idle_share(system)
                before = _windows(await request(system.control_socket, "status"))
            result = await asyncio.to_thread(_measure, system, rate, duration, processes)
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
) -> Run:
    root = Path(tempfile.mkdtemp(prefix="einblick-bench-"))
    try:
        top = None
        if any(rate <= 0 for rate in rates):
            top = asyncio.run(ceiling(root, duration, DEVICES, processes))
        results: list[Result] = []
        for name in systems:
            results += asyncio.run(_run_system(name, root, rates, duration, processes))
        return Run(results, top, measure_commits(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def soak(rate: float, seconds: float, samples: int = 20) -> list[tuple[float, float, int]]:
    """Run the gateway at ``rate`` for ``seconds``; sample (elapsed s, RSS MB, messages) as it goes."""
    root = Path(tempfile.mkdtemp(prefix="einblick-soak-"))

    async def run() -> list[tuple[float, float, int]]:
        system = _System("einblick", root / "einblick")
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
        "--slowdown",
        type=float,
        default=PI_SLOWDOWN,
        help=f"assumed CPU slowdown of the target box per core against this one (default "
        f"{PI_SLOWDOWN:g}: a Raspberry-Pi-class box)",
    )
    parser.add_argument(
        "--on-this-box",
        action="store_true",
        help="size for the machine the benchmark runs on (no slowdown assumed)",
    )
    args = parser.parse_args(argv)
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
    systems = tuple(s for s in args.systems.split(",") if s)
    unknown = sorted(s for s in set(systems) - set(SYSTEMS) if wake_interval_ms(s) is None)
    if unknown:
        choices = ", ".join((*SYSTEMS, UNPACED, f"{WAKE_PREFIX}N (N ms, 1-{MAX_WAKE_MS})"))
        parser.error(f"unknown system {', '.join(unknown)}: choose from {choices}")
    print(
        f"machine: {os.cpu_count()} cores, {platform()}; {DEVICES} devices, ~200-byte JSON, QoS 1",
        flush=True,
    )
    run = run_bench(rates, args.duration, systems)
    for line in render(run):
        print(line)
    slowdown = 1.0 if args.on_this_box else args.slowdown
    for line in render_sizing(run.results, slowdown, measured_here=args.on_this_box):
        print(line)
    if run.commits is not None:
        for line in render_commits(run.commits):
            print(line)
    return 0


def platform() -> str:
    import platform as _platform  # noqa: PLC0415 - only for the banner

    return (
        f"{_platform.python_implementation()} {_platform.python_version()}, {_platform.machine()}"
    )


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
