"""What a live session costs the portal: twenty customers' browsers following their logs at
once (Server-Sent Events), each a logged-in session of its own; the portal's resident memory
before and after, and the time pages take meanwhile.

Run with ``-s`` to see the figures (the README quotes them).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import aiohttp

from tests.portal.site import CUSTOMER, PortalSite, portal_site

SESSIONS = 20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def follow(
    site: PortalSite,
    client: aiohttp.ClientSession,
    opened: asyncio.Event,
    got: list[float],
    sent_at: list[float],
) -> None:
    async with client.get(
        site.url + "/live?after=0", timeout=aiohttp.ClientTimeout(total=None)
    ) as response:
        assert response.status == 200
        opened.set()
        async for line in response.content:
            if line.startswith(b"event: entry"):
                got.append(time.monotonic() - sent_at[0])
                return


async def test_twenty_live_sessions_cost_little_and_pages_stay_fast(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        pid = site.process.pid
        idle = rss_kib(pid)
        clients = [await site.account(login=f"user{i:02d}") for i in range(SESSIONS)]
        async with clients[0].get(site.url + "/log") as response:  # warm: templates, reader
            assert response.status == 200
        before = rss_kib(pid)
        got: list[float] = []
        sent_at = [0.0]
        openings = [asyncio.Event() for _ in clients]
        async with asyncio.TaskGroup() as group:
            for i, (client, opened) in enumerate(zip(clients, openings, strict=True)):
                group.create_task(follow(site, client, opened, got, sent_at), name=f"follow-{i}")
            for opened in openings:
                await opened.wait()
            during = rss_kib(pid)
            # Pages while twenty streams poll.
            timings = []
            for _ in range(5):
                for client in clients:
                    started = time.monotonic()
                    async with client.get(site.url + "/log") as response:
                        await response.read()
                        assert response.status == 200
                    timings.append(time.monotonic() - started)
            sent_at[0] = time.monotonic()
            await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        per_session = (during - before) / SESSIONS
        p95 = statistics.quantiles(timings, n=20)[-1]
        print(
            f"\nportal RSS {idle / 1024:.1f} MiB idle, {before / 1024:.1f} MiB after {SESSIONS} logins, {during / 1024:.1f} MiB with {SESSIONS} live "
            f"sessions: {per_session:.0f} KiB per live session; /log p95 {p95 * 1000:.0f} ms "
            f"over {len(timings)} requests; a new entry reached all {len(got)} streams within "
            f"{max(got) * 1000:.0f} ms"
        )
        assert len(got) == SESSIONS
        assert max(got) < 2.0
        assert p95 < 0.3
        assert per_session < 1024  # KiB: a live session is a coroutine and a buffer, not a process
