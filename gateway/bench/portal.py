"""``python -m gateway.bench.portal``: the customers' portal under load, beside the gateway it
must not slow down.

The whole box of ``einblick bench`` (broker A for the devices, broker B for the cloud, the
gateway with its policies, the benchmark customer's ten load devices) plus the portal as its own
process over HTTPS (the box's CA). Twenty accounts of the benchmark customer log in. Then, in
one run, phases alternate for ``--rounds`` rounds: *without* (the portal up, its sessions logged
in and idle) and *with* (every session holds the live stream and fetches a page a second: the
log, the withheld filter, an entry's explanation with its proof, who gets what, the download
page, the access report). In every phase the devices publish at the same rate and the end-to-end latency device →
cloud is measured as ``einblick bench`` does, together with the gateway's own stage latencies
(its status windows); the portal's figures come from the *with* phases.

The sessions run in a process of their own (``--clients``, driven over its stdin and stdout): in
this one, twenty TLS streams and their pages held the GIL that the latency probe's network thread
needs, and the probe's delays were counted as the gateway's.

Figures: page latency (p50/p95 per page), live lag (an entry's SSE event arriving at a session
after the entry is in the log; its commit time is when a 20 ms poll of the database first sees
it; both processes read the same monotonic clock), the gateway's p99 per phase and its median
and range with and without, and the portal's memory per live session (its RSS with every stream
open minus its RSS with the sessions logged in and idle, / sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import re
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from gateway.bench.pipeline import _measure, _stages, _windows
from gateway.bench.process_stats import cpu_seconds, rss_mb
from gateway.bench.results import GENERATOR_PROCESSES, Result
from gateway.bench.systems import System
from gateway.config import load_config
from gateway.devices.ports import free_port
from gateway.log.reader import Reader
from gateway.operations.control import request
from gateway.operations.portal.store import PortalStore

__all__ = ["main"]

PASSWORD = "bench portal password"
PAGES = ("/log", "/log?outcome=withheld", "/entry/{seq}", "/grants", "/download", "/report")


@dataclass
class Watch:
    """When each seq was first seen in the log: (monotonic time, newest seq) every 20 ms."""

    times: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    def committed_at(self, seq: int) -> float | None:
        at = bisect.bisect_left(self.seqs, seq)
        return self.times[at] if at < len(self.seqs) else None


def watch(database: Path, into: Watch, stop: threading.Event) -> None:
    reader = Reader.open(database)  # read-only, on this thread
    try:
        while not stop.is_set():
            newest = reader.latest_seq()
            if not into.seqs or newest > into.seqs[-1]:
                into.times.append(time.monotonic())
                into.seqs.append(int(newest))
            time.sleep(0.02)
    finally:
        reader.close()


@dataclass
class Figures:
    """What the sessions saw in the *with* phases: page times, and each live event's arrival."""

    pages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    arrivals: list[tuple[int, float]] = field(default_factory=list)  # (seq, monotonic time)
    newest: int = 1  # the newest seq a stream brought (the entry page asks for it)
    errors: int = 0


async def _csrf(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as response:
        found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    if found is None:
        raise RuntimeError(f"no CSRF field on {url}")
    return found.group(1)


async def log_in(url: str, context: ssl.SSLContext, login: str) -> aiohttp.ClientSession:
    client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    form = {"csrf": await _csrf(client, url + "/login"), "login": login, "password": PASSWORD}
    async with client.post(url + "/login", data=form, allow_redirects=False) as response:
        if response.status != 303:
            raise RuntimeError(f"{login} could not log in: {response.status}")
    return client


async def live(client: aiohttp.ClientSession, url: str, after: int, figures: Figures) -> None:
    """Hold the live stream from ``after`` on; note when each event arrives."""
    async with client.get(f"{url}/live?after={after}", timeout=aiohttp.ClientTimeout()) as stream:
        async for raw in stream.content:
            if raw.startswith(b"data: "):
                seq = int(orjson.loads(raw[6:])["seq"])
                figures.arrivals.append((seq, time.monotonic()))
                figures.newest = max(figures.newest, seq)


async def browse(client: aiohttp.ClientSession, url: str, figures: Figures, offset: float) -> None:
    """A page a second, in turn, starting ``offset`` s late (sessions do not move in step)."""
    await asyncio.sleep(offset)
    turn = 0
    while True:
        page = PAGES[turn % len(PAGES)]
        turn += 1
        path = page.format(seq=figures.newest)
        started = time.monotonic()
        async with client.get(url + path) as response:
            await response.read()
            if response.status != 200:
                figures.errors += 1
        figures.pages[page].append(time.monotonic() - started)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def clients(url: str, cafile: str, logins: list[str]) -> None:
    """The sessions' process: log in, say ``ready``; then per ``go AFTER`` line on stdin run
    every session (live stream and pages) until ``stop``, and print what they saw as one JSON
    line; ``quit`` ends it."""
    context = ssl.create_default_context(cafile=cafile)
    sessions = [await log_in(url, context, login) for login in logins]
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    try:
        while (line := (await loop.run_in_executor(None, sys.stdin.readline)).split()) and line[
            0
        ] == "go":
            figures = Figures()
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(live(c, url, int(line[1]), figures), name=f"live-{i}")
                    for i, c in enumerate(sessions)
                ] + [
                    group.create_task(
                        browse(c, url, figures, i / len(sessions)), name=f"browse-{i}"
                    )
                    for i, c in enumerate(sessions)
                ]
                await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
                for task in tasks:
                    task.cancel()
            print(
                orjson.dumps(
                    {"pages": figures.pages, "arrivals": figures.arrivals, "errors": figures.errors}
                ).decode(),
                flush=True,
            )
    finally:
        for client in sessions:
            await client.close()


class Sessions:
    """The sessions' process, seen from the bench."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, cafile: Path, logins: list[str]) -> Sessions:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.bench.portal",
            "--clients",
            url,
            str(cafile),
            ",".join(logins),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,  # a phase's figures are one JSON line (MBs)
        )
        sessions = cls(process)
        if await sessions._line() != b"ready":
            raise RuntimeError("the sessions could not log in (their process's error is above)")
        return sessions

    async def _line(self) -> bytes:
        assert self.process.stdout is not None
        async with asyncio.timeout(120):
            return (await self.process.stdout.readline()).strip()

    async def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def go(self, after: int) -> None:
        await self._say(f"go {after}")

    async def stop(self, into: Figures) -> None:
        await self._say("stop")
        seen = orjson.loads(await self._line())
        for page, values in seen["pages"].items():
            into.pages[page] += values
        into.arrivals += [(int(s), float(t)) for s, t in seen["arrivals"]]
        into.errors += int(seen["errors"])

    async def close(self) -> None:
        if self.process.returncode is None:
            await self._say("quit")
            async with asyncio.timeout(30):
                await self.process.wait()


async def _portal(config_path: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"portal:\n  host: 127.0.0.1\n  port: {port}\n  max_live_sessions: 100\n")
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "portal", "--config", str(config_path), stderr=err
        )
    async with asyncio.timeout(30):  # the fence: it says where it listens once bound
        while f"127.0.0.1:{port}" not in _text(log):
            if process.returncode is not None:
                raise RuntimeError(f"the portal exited: {_text(log)}")
            await asyncio.sleep(0.05)
    return process, f"https://127.0.0.1:{port}"


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


def _accounts(portal_db: Path, count: int) -> list[str]:
    store = PortalStore(portal_db)
    try:
        logins = [f"kunde-{i:02d}" for i in range(count)]
        for login in logins:
            token, _ = store.invite("bench", login, 3600)
            store.accept(token, login, PASSWORD)
        return logins
    finally:
        store.close()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


@dataclass
class Phase:
    """One phase's figures: the probe's end to end, the gateway's own stages, the load."""

    name: str
    result: Result
    stages: dict[str, tuple[float, float]]
    load: float  # the 1-minute load average at its end


async def _phase(name: str, system: System, rate: float, phase_s: float) -> Phase:
    assert system.control_socket is not None
    before = _windows(await request(system.control_socket, "status"))
    result = await asyncio.to_thread(_measure, system, rate, phase_s, GENERATOR_PROCESSES)
    after = _windows(await request(system.control_socket, "status"))
    return Phase(name, result, _stages(before, after), os.getloadavg()[0])


async def run(sessions: int, rate: float, phase_s: float, rounds: int) -> int:
    root = Path(tempfile.mkdtemp(prefix="einblick-bench-portal-"))
    system = System("einblick", root)
    await system.start()
    portal: asyncio.subprocess.Process | None = None
    crowd: Sessions | None = None
    try:
        config_path = root / "edge" / "einblick.yaml"
        config = load_config(config_path)
        portal, url = await _portal(config_path, root / "portal.log")
        logins = await asyncio.to_thread(_accounts, config.portal_db, sessions)
        crowd = await Sessions.start(url, config.data_path / "tls" / "ca.crt", logins)
        seen, figures, stop = Watch(), Figures(), threading.Event()
        watcher = threading.Thread(target=watch, args=(config.database_path, seen, stop))
        watcher.start()
        phases: list[Phase] = []
        # Idle: every session logged in, none streaming yet (measured before any stream opened).
        rss_idle, rss_live, cpu, crowd_cpu, cpu_s = rss_mb(portal.pid), 0.0, 0.0, 0.0, 0.0
        try:
            for name in ("without", "with") * rounds:
                if name == "without":
                    phases.append(await _phase(name, system, rate, phase_s))
                    continue
                cpu0, started = cpu_seconds(portal.pid), time.monotonic()
                crowd0 = cpu_seconds(crowd.process.pid)
                await crowd.go(seen.seqs[-1] if seen.seqs else 0)
                phases.append(await _phase(name, system, rate, phase_s))
                rss_live = max(rss_live, rss_mb(portal.pid))
                await crowd.stop(figures)
                cpu += cpu_seconds(portal.pid) - cpu0
                crowd_cpu += cpu_seconds(crowd.process.pid) - crowd0
                cpu_s += time.monotonic() - started
        finally:
            stop.set()
            watcher.join()
        lags = [
            arrived - committed
            for seq, arrived in figures.arrivals
            if (committed := seen.committed_at(seq)) is not None
        ]
        _print(sessions, rate, phase_s, rounds, phases, figures, lags)
        print(
            f"portal RSS: {rss_idle:.1f} MB idle with {sessions} sessions logged in, "
            f"{rss_live:.1f} MB with every live stream open: "
            f"{(rss_live - rss_idle) / sessions * 1024:.0f} KiB per live session"
        )
        print(
            f"portal CPU while the sessions are active: {100 * cpu / cpu_s:.0f}% of one core; "
            f"the sessions' own process (browsers, on a real box elsewhere): "
            f"{100 * crowd_cpu / cpu_s:.0f}%"
        )
        return 0
    finally:
        if crowd is not None:
            await crowd.close()
        if portal is not None and portal.returncode is None:
            portal.terminate()
            await portal.wait()
        await system.stop()
        shutil.rmtree(root, ignore_errors=True)


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} ms (range {min(values):.1f}–{max(values):.1f})"


def _print(  # noqa: PLR0917 -- the run's settings and its figures, printed once
    sessions: int,
    rate: float,
    phase_s: float,
    rounds: int,
    phases: list[Phase],
    figures: Figures,
    lags: list[float],
) -> None:
    print(
        f"{sessions} sessions, {rate:,.0f} msg/s offered, {rounds} × ({phase_s:.0f} s without, "
        f"{phase_s:.0f} s with the sessions active), alternating"
    )
    every = [v for values in figures.pages.values() for v in values]
    print(
        f"pages: {len(every)} fetched, {figures.errors} not 200; "
        f"p50 {_p(every, 0.5):.0f} ms, p95 {_p(every, 0.95):.0f} ms, max {_p(every, 1.0):.0f} ms"
    )
    for page, values in figures.pages.items():
        print(
            f"  {page:<24} n={len(values):>4}  p50 {_p(values, 0.5):6.0f} ms  "
            f"p95 {_p(values, 0.95):6.0f} ms"
        )
    print(
        f"live: {len(figures.arrivals)} events; lag behind commit p50 {_p(lags, 0.5):.0f} ms, "
        f"p95 {_p(lags, 0.95):.0f} ms, max {_p(lags, 1.0):.0f} ms"
    )
    stages = sorted({stage for p in phases for stage in p.stages})
    for p in phases:
        r = p.result
        own = ", ".join(f"{s} p99 {p.stages[s][1]:.1f} ms" for s in stages if s in p.stages)
        print(
            f"gateway {p.name:<7}: {r.throughput:,.0f} msg/s arrived, lost {r.lost}, "
            f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms; {own}; load {p.load:.1f}"
        )
    p99 = {n: [p.result.p99_ms for p in phases if p.name == n] for n in ("without", "with")}
    for name, values in p99.items():
        print(f"gateway p99 {name:<7} the sessions: {_spread(values)}")
    added = statistics.median(p99["with"]) - statistics.median(p99["without"])
    print(f"gateway p99 added by the portal (median with − median without): {added:+.1f} ms")
    behind = [p for p in phases if p.name == "without" and p.result.throughput < 0.95 * rate]
    if behind:  # then the phases compare two overloads, not the portal's cost
        print(
            f"NOTE: in {len(behind)} of {rounds} phases without the sessions the box forwarded "
            f"under 95% of {rate:,.0f} msg/s (load average up to "
            f"{max(p.load for p in phases):.1f} on {os.cpu_count()} cores): the gateway's "
            "latency here measures the machine's other work, not the portal"
        )
    for stage in stages:
        by_phase = {
            n: [p.stages[stage][1] for p in phases if p.name == n and stage in p.stages]
            for n in ("without", "with")
        }
        if by_phase["without"] and by_phase["with"]:
            print(
                f"  gateway's own {stage} p99: without {_spread(by_phase['without'])}, "
                f"with {_spread(by_phase['with'])}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000.0, help="device msg/s offered")
    parser.add_argument("--phase", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=4, help="pairs of phases (without, with)")
    parser.add_argument(
        "--clients", nargs=3, metavar=("URL", "CAFILE", "LOGINS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.clients:  # the sessions' own process (see Sessions)
        url, cafile, logins = args.clients
        asyncio.run(clients(url, cafile, logins.split(",")))
        return 0
    return asyncio.run(run(args.sessions, args.rate, args.phase, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
