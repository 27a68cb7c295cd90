"""``python -m gateway.bench.portal``: the customers' portal under load, beside the gateway it
must not slow down.

The whole box of ``einblick bench`` (broker A for the devices, broker B for the cloud, the
gateway with its policies, the benchmark customer's ten load devices) plus the portal as its own
process over HTTPS (the box's CA). Twenty accounts of the benchmark customer log in. Then, in
one run, phases alternate: *without* (the portal up, no session active) and *with* (every
session holds the live stream and fetches a page a second: the log, a filter, an entry's
explanation with its proof, who gets what, the download page). In every phase the devices
publish at the same rate and the end-to-end latency device → cloud is measured as
``einblick bench`` does; the portal's figures come from the *with* phases.

Figures: page latency (p50/p95 per page), live lag (an entry's SSE event arriving at a session
after the entry is in the log; its commit time is when a 20 ms poll of the database first sees
it), the gateway's p50/p99 with and without, and the portal's memory per live session
(its RSS with every stream open minus its RSS with the sessions logged in and idle, / sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from gateway.bench.pipeline import _cpu_seconds, _measure, _rss_mb, _System
from gateway.bench.results import GENERATOR_PROCESSES, Result
from gateway.config import load_config
from gateway.devices.broker import free_port
from gateway.log.reader import Reader
from gateway.operations.portal.store import PortalStore

__all__ = ["main"]

PASSWORD = "bench portal password"
PAGES = ("/log", "/log?outcome=withheld", "/entry/{seq}", "/grants", "/download")


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
    pages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lags: list[float] = field(default_factory=list)
    events: int = 0
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


async def live(client: aiohttp.ClientSession, url: str, seen: Watch, figures: Figures) -> None:
    """Hold the live stream from the newest entry on; each event's lag behind its commit."""
    after = seen.seqs[-1] if seen.seqs else 0
    async with client.get(f"{url}/live?after={after}", timeout=aiohttp.ClientTimeout()) as stream:
        async for raw in stream.content:
            if raw.startswith(b"data: "):
                arrived = time.monotonic()
                seq = int(orjson.loads(raw[6:])["seq"])
                committed = seen.committed_at(seq)
                figures.events += 1
                if committed is not None:
                    figures.lags.append(arrived - committed)


async def browse(
    client: aiohttp.ClientSession, url: str, seen: Watch, figures: Figures, offset: float
) -> None:
    """A page a second, in turn, starting ``offset`` s late (sessions do not move in step)."""
    await asyncio.sleep(offset)
    turn = 0
    while True:
        page = PAGES[turn % len(PAGES)]
        turn += 1
        path = page.format(seq=seen.seqs[-1] if seen.seqs else 1)
        started = time.monotonic()
        async with client.get(url + path) as response:
            await response.read()
            if response.status != 200:
                figures.errors += 1
        figures.pages[page].append(time.monotonic() - started)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


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


async def run(sessions: int, rate: float, phase_s: float, rounds: int) -> int:
    root = Path(tempfile.mkdtemp(prefix="einblick-bench-portal-"))
    system = _System("einblick", root)
    await system.start()
    portal: asyncio.subprocess.Process | None = None
    try:
        config_path = root / "edge" / "einblick.yaml"
        config = load_config(config_path)
        portal, url = await _portal(config_path, root / "portal.log")
        context = ssl.create_default_context(cafile=str(config.data_path / "tls" / "ca.crt"))
        logins = await asyncio.to_thread(_accounts, config.portal_db, sessions)
        clients = [await log_in(url, context, login) for login in logins]
        seen, figures, stop = Watch(), Figures(), threading.Event()
        watcher = threading.Thread(target=watch, args=(config.database_path, seen, stop))
        watcher.start()
        results: dict[str, list[Result]] = {"without": [], "with": []}
        # Idle: every session logged in, none streaming yet (measured before any stream opened).
        rss_idle, rss_live, cpu = _rss_mb(portal.pid), 0.0, 0.0
        try:
            for phase in ("without", "with") * rounds:
                if phase == "without":
                    results[phase].append(
                        await asyncio.to_thread(
                            _measure, system, rate, phase_s, GENERATOR_PROCESSES
                        )
                    )
                    continue
                cpu0, started = _cpu_seconds(portal.pid), time.monotonic()
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(live(c, url, seen, figures), name=f"live-{i}")
                        for i, c in enumerate(clients)
                    ] + [
                        group.create_task(
                            browse(c, url, seen, figures, i / sessions), name=f"browse-{i}"
                        )
                        for i, c in enumerate(clients)
                    ]
                    measured = group.create_task(
                        asyncio.to_thread(_measure, system, rate, phase_s, GENERATOR_PROCESSES),
                        name="load",
                    )
                    results[phase].append(await measured)
                    rss_live = max(rss_live, _rss_mb(portal.pid))
                    for task in tasks:
                        task.cancel()
                cpu += (_cpu_seconds(portal.pid) - cpu0) / (time.monotonic() - started) / rounds
        finally:
            stop.set()
            watcher.join()
            for client in clients:
                await client.close()
        _print(sessions, rate, phase_s, rounds, results, figures, rss_idle, rss_live)
        print(f"portal CPU while the sessions are active: {100 * cpu:.0f}% of one core")
        return 0
    finally:
        if portal is not None and portal.returncode is None:
            portal.terminate()
            await portal.wait()
        await system.stop()
        shutil.rmtree(root, ignore_errors=True)


def _print(  # noqa: PLR0917 -- the run's settings and its figures, printed once
    sessions: int,
    rate: float,
    phase_s: float,
    rounds: int,
    results: dict[str, list[Result]],
    figures: Figures,
    rss_idle: float,
    rss_live: float,
) -> None:
    print(
        f"{sessions} sessions, {rate:,.0f} msg/s offered, {rounds} × ({phase_s:.0f} s without, "
        f"{phase_s:.0f} s with the sessions active)"
    )
    every = [v for values in figures.pages.values() for v in values]
    print(
        f"pages: {len(every)} fetched, {figures.errors} not 200; "
        f"p50 {_p(every, 0.5):.0f} ms, p95 {_p(every, 0.95):.0f} ms, max {_p(every, 1.0):.0f} ms"
    )
    for page, values in figures.pages.items():
        print(
            f"  {page:<24} n={len(values):>4}  p50 {_p(values, 0.5):6.0f} ms  p95 {_p(values, 0.95):6.0f} ms"
        )
    print(
        f"live: {figures.events} events; lag behind commit p50 {_p(figures.lags, 0.5):.0f} ms, "
        f"p95 {_p(figures.lags, 0.95):.0f} ms, max {_p(figures.lags, 1.0):.0f} ms"
    )
    for phase, runs in results.items():
        for r in runs:
            print(
                f"gateway {phase:<7}: {r.throughput:,.0f} msg/s arrived, lost {r.lost}, "
                f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms"
            )
    added = max(r.p99_ms for r in results["with"]) - max(r.p99_ms for r in results["without"])
    print(f"gateway p99 added by the portal (worst with − worst without): {added:+.1f} ms")
    print(
        f"portal RSS: {rss_idle:.1f} MB idle with {sessions} sessions logged in, "
        f"{rss_live:.1f} MB with every live stream open: "
        f"{(rss_live - rss_idle) / sessions * 1024:.0f} KiB per live session"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000.0, help="device msg/s offered")
    parser.add_argument("--phase", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases (without, with)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.sessions, args.rate, args.phase, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
