"""The portal as a child process of ``einblick run``: at a lower CPU priority than forwarding;
killed (-9), it is started again and answers; when the gateway stops, it stops too."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp

from gateway.commands.customer import PORTAL_NICE
from gateway.devices.ports import free_port
from gateway.operations.portal.process import supervise_portal
from gateway.operations.scaffold import InitOptions, init_directory


def portal_children() -> list[int]:
    """This process's children running ``gateway portal`` (from /proc: no pid is guessed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"portal" in command and b"gateway" in command:
            found.append(int(entry.name))
    return found


def niceness(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[16])


async def answering(url: str) -> None:
    """The fence: the portal answers its login page."""
    async with aiohttp.ClientSession() as client:
        while True:
            try:
                async with client.get(url + "/login") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


async def test_a_crashed_portal_is_started_again_and_stops_with_the_gateway(
    tmp_path: Path,
) -> None:
    config_path = init_directory(InitOptions(directory=tmp_path / "box", broker_port=free_port()))
    port = free_port()
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"portal:\n  host: 127.0.0.1\n  port: {port}\n  plain_http: true\n")
    url = f"http://127.0.0.1:{port}"
    async with asyncio.TaskGroup() as group:
        supervisor = group.create_task(supervise_portal(config_path), name="portal-supervisor")
        async with asyncio.timeout(30):
            await answering(url)
        [first] = portal_children()
        # It yields the CPU to forwarding: its niceness is ours plus PORTAL_NICE.
        assert niceness(first) == os.nice(0) + PORTAL_NICE
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(30):  # the backoff's first pause is about a second
            while portal_children() in ([], [first]):
                await asyncio.sleep(0.1)
            await answering(url)
        [second] = portal_children()
        assert second != first
        supervisor.cancel()
    assert portal_children() == []
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(url + "/login") as response:
                raise AssertionError(f"the portal still answers: {response.status}")
        except aiohttp.ClientConnectionError:
            pass
