"""Upstreams cut and restored repeatedly; the log's disk filled until writes fail, then freed."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.faults.site import RECIPIENTS, SEED, Site, check_upstream_fields, stream
from tests.faults.summary import LONG, record

pytestmark = pytest.mark.fault


async def test_each_upstream_cut_and_restored_repeatedly_loses_nothing(tmp_path: Path) -> None:
    cuts, per_device = (10, 5_000) if LONG else (2, 1_000)
    rng = random.Random(SEED + 2)
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup()
        await site.start_gateway()
        devices = {name: site.device(name) for name in ("press-1", "press-2")}
        rate = 90.0

        async def cutter() -> None:
            for n in range(cuts * len(RECIPIENTS)):
                recipient = RECIPIENTS[n % len(RECIPIENTS)]
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                broker = site.clouds[recipient]
                await broker.stop()  # the recipient's cloud is unreachable
                site.faults += 1
                await site.wait_until(
                    _upstream_down(site, recipient), 20, f"the gateway to see {recipient} down"
                )
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                await broker.start()  # back, same port, its persistent sessions intact

        async with asyncio.TaskGroup() as tasks:
            for name, device in devices.items():
                tasks.create_task(stream(device, name, per_device, rate), name=f"stream-{name}")
            tasks.create_task(cutter(), name="cutter")
        await site.wait_until(site.outbox_empty, 120, "the outbox to drain")
        await site.settle(
            lambda: all(
                len({(m.topic, m.payload) for m in s.received}) >= 2 * per_device
                for s in site.spies.values()
            ),
            20,
        )
        check_upstream_fields(site)
        result = await site.audit(devices.values(), max_duplicates=cuts * 2 * 500)
        row = record(
            f"upstreams cut x{cuts} each",
            result.summary,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0 and row.forwarded == 2 * per_device
        for device in devices.values():
            await device.close()
    finally:
        await site.teardown()


def _upstream_down(site: Site, recipient: str) -> object:
    async def check() -> bool:
        status = await site.status()
        return not next(u for u in status["upstreams"] if u["recipient"] == recipient)["connected"]

    return check


@contextlib.contextmanager
def small_disk(directory: Path, size_mb: int = 8) -> Iterator[Path]:
    """A size-limited file system at ``directory``: tmpfs, or a loop-mounted ext4 image."""
    directory.mkdir(parents=True, exist_ok=True)
    tried = []
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        tried.append(f"tmpfs: {mounted.stderr.strip()}")
        image = directory.parent / "disk.img"
        with image.open("wb") as handle:
            handle.truncate(size_mb * 1024 * 1024)
        made = subprocess.run(
            ["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True, check=False
        )
        mounted = subprocess.run(
            ["mount", "-o", "loop", str(image), str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0 or mounted.returncode != 0:
            tried.append(f"loop device: {made.stderr.strip()} {mounted.stderr.strip()}")
            pytest.fail(
                "the disk-full test needs a small file system of its own and could mount none "
                f"(run as root, or allow mount): {'; '.join(tried)}"
            )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system refuses another byte."""
    ballast = directory / "ballast"
    chunk = b"\0" * 65536
    with ballast.open("wb") as handle:
        while True:
            try:
                handle.write(chunk)
                handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        with contextlib.suppress(OSError):
            handle.close()
    # Whatever a 64 KiB write could not use: fill it too, byte by byte in smaller steps.
    with contextlib.suppress(OSError), ballast.open("ab") as handle:
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
                    handle.flush()
    return ballast


async def test_disk_full_fails_closed_says_so_and_resumes_when_space_returns(
    tmp_path: Path,
) -> None:
    per_device = 3_000 if LONG else 1_200
    site = Site(tmp_path)
    started = time.monotonic()
    with small_disk(tmp_path / "disk") as disk:
        try:
            # A per-device limit well above the devices' 60/s but with a shallow bucket: the
            # messages that wait in the gateway while the disk is full, then are decided in one
            # burst, must not count as a flood (the guard judges arrival, not decision).
            await site.setup(
                database=disk / "einblick.db",
                pipeline="  device_max_rate: 100\n  device_burst: 50\n",
            )
            await site.start_gateway()
            devices = {name: site.device(name) for name in ("press-1", "press-2")}
            rate = 60.0
            streams = asyncio.gather(*(stream(d, n, per_device, rate) for n, d in devices.items()))
            await site.wait_until(  # a healthy start: messages flow
                lambda: sum(len(s.received) for s in site.spies.values()) > 0,
                60,
                "the first messages to reach the recipients",
            )
            ballast = fill(disk)
            site.faults += 1

            async def failing() -> bool:
                return (await site.status())["pipeline"]["failing_closed"] is not None

            await site.wait_until(failing, 60, "the gateway to report that it fails closed")
            status = await site.status()
            why = status["pipeline"]["failing_closed"]
            assert "full" in why.lower(), why
            # `einblick status` says so to the installer, too.
            shown = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "gateway", "status", "--config", str(site.config_path)),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            text = (await shown.communicate())[0].decode(errors="replace")
            assert "full" in text.lower(), text
            # Fail closed: nothing new leaves while nothing can be recorded.
            await asyncio.sleep(0.5)
            before = sum(len(s.received) for s in site.spies.values())
            await asyncio.sleep(2.0)
            still_failing = await failing()
            after = sum(len(s.received) for s in site.spies.values())
            assert still_failing, "the disk was freed by someone else?"
            assert after == before, f"{after - before} messages left while failing closed"
            ballast.unlink()  # space returns; nobody restarts anything
            await site.wait_until(lambda: _not(failing), 30, "the gateway to resume by itself")
            await streams
            await site.wait_until(site.outbox_empty, 60, "the outbox to drain")
            await site.settle(
                lambda: all(
                    len({(m.topic, m.payload) for m in s.received}) >= 2 * per_device
                    for s in site.spies.values()
                ),
                20,
            )
            check_upstream_fields(site)
            result = await site.audit(devices.values(), max_duplicates=2000)
            row = record(
                "disk full, then freed",
                result.summary,
                faults=site.faults,
                seconds=time.monotonic() - started,
            )
            assert result.returncode == 0, result.problems
            assert row.lost == 0 and row.forwarded == 2 * per_device, result.summary.get("reasons")
            for device in devices.values():
                await device.close()
        finally:
            await site.teardown()
            shutil.rmtree(disk, ignore_errors=True)


async def _not(check: object) -> bool:
    assert callable(check)
    return not await check()


async def test_a_backlog_queued_while_the_gateway_was_down_is_not_taken_for_a_flood(
    tmp_path: Path,
) -> None:
    """Killed gateway, broker still running: devices publish at their allowed rate into the
    broker; on restart the backlog arrives in one burst, far beyond the bucket. A device that
    kept its rate must get everything through; one that flooded meanwhile must not."""
    site = Site(tmp_path)
    try:
        await site.setup(pipeline="  device_max_rate: 20\n  device_burst: 20\n")
        await site.start_gateway()
        calm, flooder = site.device("press-1"), site.device("press-2")
        await site.kill_gateway()  # its Mosquitto keeps running and queues for the gateway
        seconds = 8.0
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(stream(calm, "press-1", int(18 * seconds), 18.0), name="calm")
            tasks.create_task(stream(flooder, "press-2", int(200 * seconds), 200.0), name="flood")
        await site.start_gateway()
        # The outbox can be empty between two parts of the backlog: first wait until every
        # message published during the gap has been taken in and committed, then for the outbox.
        offered = int(18 * seconds) + int(200 * seconds)
        await site.wait_until(
            lambda: _committed_at_least(site, offered), 60, "the whole backlog to be committed"
        )
        await site.wait_until(site.outbox_empty, 60, "the outbox to drain")
        result = await site.audit([calm, flooder])
        assert result.returncode == 0, result.problems
        for recipient, spy in site.spies.items():
            got = {orjson.loads(m.payload)["seq"] for m in spy.received if "press-1" in m.topic}
            assert got == set(range(int(18 * seconds))), f"{recipient}: calm backlog withheld"
            flooded = {orjson.loads(m.payload)["seq"] for m in spy.received if "press-2" in m.topic}
            # Credit for the gap (~20/s over it, the restart included) plus the bucket; not 1,600.
            assert len(flooded) < 20 * (seconds + 10) + 20, len(flooded)
        assert result.summary["reasons"].get("flooding", 0) >= 1000
        await calm.close()
        await flooder.close()
    finally:
        await site.teardown()


async def _committed_at_least(site: Site, count: int) -> bool:
    status = await site.status()
    return int(status["pipeline"]["committed"]) >= count
