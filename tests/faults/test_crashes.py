"""kill -9 of the gateway, again and again, and of the device-side broker, during one stream."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from tests.faults.site import SEED, Site, check_upstream_fields, stream
from tests.faults.summary import LONG, record

pytestmark = pytest.mark.fault


async def test_gateway_killed_at_random_points_loses_nothing(tmp_path: Path) -> None:
    kills, per_device = (20, 10_000) if LONG else (5, 1_500)
    rng = random.Random(SEED)
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup()
        await site.start_gateway()
        devices = {name: site.device(name) for name in ("press-1", "press-2")}
        rate = 90.0  # per device, under the default flood limit of 100/s

        async def killer() -> None:
            duration = per_device / rate
            moments = sorted(rng.uniform(0.05, 0.9) * duration for _ in range(kills))
            begun = time.monotonic()
            for moment in moments:
                await asyncio.sleep(max(0.0, moment - (time.monotonic() - begun)))
                await site.kill_gateway()
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                await site.start_gateway()

        async with asyncio.TaskGroup() as tasks:
            for name, device in devices.items():
                tasks.create_task(stream(device, name, per_device, rate), name=f"stream-{name}")
            tasks.create_task(killer(), name="killer")
        await site.wait_until(site.outbox_empty, 60, "the outbox to drain")
        spies_total = 2 * 2 * per_device
        await site.settle(
            lambda: (
                sum(len({(m.topic, m.payload) for m in s.received}) for s in site.spies.values())
                >= spies_total
            ),
            30,
        )
        check_upstream_fields(site)
        result = await site.audit(devices.values(), max_duplicates=kills * 1500)
        assert result.returncode == 0, result.problems
        row = record(
            f"gateway kill -9 x{kills} (seed {SEED})",
            result.summary,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert row.lost == 0 and row.offered == 2 * per_device
        assert row.forwarded == 2 * per_device
        assert site.faults == kills
        for device in devices.values():
            await device.close()
    finally:
        await site.teardown()


async def test_device_broker_killed_and_restarted_loses_nothing(tmp_path: Path) -> None:
    kills, per_device = (10, 5_000) if LONG else (3, 1_000)
    rng = random.Random(SEED + 1)
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup()
        await site.start_gateway()
        devices = {name: site.device(name) for name in ("press-1", "press-2")}
        rate = 90.0

        async def killer() -> None:
            duration = per_device / rate
            moments = sorted(rng.uniform(0.05, 0.9) * duration for _ in range(kills))
            begun = time.monotonic()
            for moment in moments:
                await asyncio.sleep(max(0.0, moment - (time.monotonic() - begun)))
                old = site.broker_pid()
                os.kill(old, 9)
                site.faults += 1
                # The gateway's supervisor starts a new Mosquitto; the devices find it again.
                await site.wait_until(
                    lambda old=old: _new_broker(site, old), 20, "the broker to be restarted"
                )
                await site.wait_until(_device_link_up(site), 20, "the gateway to reconnect")

        async with asyncio.TaskGroup() as tasks:
            for name, device in devices.items():
                tasks.create_task(stream(device, name, per_device, rate), name=f"stream-{name}")
            tasks.create_task(killer(), name="killer")
        await site.wait_until(site.outbox_empty, 60, "the outbox to drain")
        # Acknowledged upstream is not yet received by the spies: wait for every distinct
        # message there (the audit names any that never came).
        await site.settle(
            lambda: all(
                len({(m.topic, m.payload) for m in s.received}) >= 2 * per_device
                for s in site.spies.values()
            ),
            20,
        )
        check_upstream_fields(site)
        result = await site.audit(devices.values(), max_duplicates=kills * 1500)
        pipeline = (await site.status())["pipeline"]
        print(f"gateway pipeline: {pipeline}")
        row = record(
            f"device broker kill -9 x{kills}",
            result.summary,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, f"{result.problems}\ngateway pipeline: {pipeline}"
        assert row.lost == 0 and row.offered == 2 * per_device
        # Each device found a restarted broker again. Not once per kill: the killer waits for
        # the gateway, not the devices, so two kills can fall inside one device's reconnect.
        assert all(d.reconnects >= 1 for d in devices.values()), "a device never reconnected"
        for device in devices.values():
            await device.close()
    finally:
        await site.teardown()


def _new_broker(site: Site, old: int) -> bool:
    try:
        pid = site.broker_pid()
    except (OSError, ValueError):
        return False
    return pid != old and Path(f"/proc/{pid}").exists()


def _device_link_up(site: Site) -> object:
    async def check() -> bool:
        status = await site.status()
        return bool(status["device_broker"]["connected"])

    return check
