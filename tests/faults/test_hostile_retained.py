"""A device flooding the device broker with large retained messages (gateway/messages/retained.py).

Red-team finding: one device publishing 300 KB retained messages to many topics under its own
``+`` level filled Mosquitto's memory_limit; every client was disconnected "due to out of memory",
and the retained set, reloaded after a restart, did it again. Now the gateway sweeps retained
messages every second and the broker refuses packets over the pipeline's payload limit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.devices.registry import DEFAULT_TOPIC, Registry
from tests.faults.raw import RawClient, remaining_length
from tests.faults.site import Site, check_upstream_fields, stream
from tests.faults.summary import record

pytestmark = pytest.mark.fault

# Mosquitto's heap limit for this site: the queue limit plus the headroom the configuration
# demands (4 packets + 64 MiB). The flood below sends more than this in retained messages.
MEMORY_LIMIT = 140_000_000
BROKER = "  limits:\n    max_queued_bytes: 67108864\n    memory_limit_bytes: 140000000\n"
FLOOD = 640  # retained messages, each to its own topic
BODY = 250_000  # bytes each: under the 256 KiB the pipeline inspects
RATE = 64.0  # messages per second


def retained_publish(topic: bytes, payload: bytes) -> bytes:
    """PUBLISH, QoS 1, retain (paho would do it too; the raw client keeps the flooder cheap)."""
    body = len(topic).to_bytes(2, "big") + topic + b"\x00\x01" + payload
    return b"\x33" + remaining_length(len(body)) + body


def broker_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def test_a_device_flooding_retained_messages_cannot_exhaust_the_broker(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup(broker_lines=BROKER)
        # Registered as 'einblick device add' does by default: devices/<customer>/<device>/+.
        registry = Registry(site.config.data_path / "devices.json")
        topic = DEFAULT_TOPIC.format(customer="werk-nord", device="flooder")
        _, password = registry.add(
            "werk-nord", "flooder", name="flooder", kind="sensor", topics=((topic, "telemetry"),)
        )
        assert password is not None
        site.passwords["flooder"] = password
        registry.save()
        await site.start_gateway()
        status = await site.status()
        link_since = status["device_broker"]["since"]
        broker_pid = site.broker_pid()
        neighbour = site.device("press-2")
        flooder = RawClient(site.config.broker.port, "werk-nord.flooder", site.passwords["flooder"])
        assert await flooder.connect() == 0
        peak_rss = 0

        async def flood() -> None:
            nonlocal peak_rss
            payload = b"x" * BODY
            for i in range(FLOOD):
                topic = f"devices/werk-nord/flooder/s{i}".encode()
                await flooder.send(retained_publish(topic, payload))
                if i % 16 == 15:
                    await flooder.ping_fence()  # the broker has taken everything so far
                    peak_rss = max(peak_rss, broker_rss(broker_pid))
                    await asyncio.sleep(16 / RATE)

        seconds = FLOOD / RATE
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(flood(), name="retained-flood")
            tasks.create_task(stream(neighbour, "press-2", int(20 * seconds), 20.0), name="calm")
        await neighbour.drain()
        await site.wait_until(site.outbox_empty, 60, "the outbox to drain")
        # The gateway decided every flooded message (withheld: not JSON), then the sweep ran.
        await site.wait_until(
            lambda: _committed_at_least(site, FLOOD + int(20 * seconds)), 60, "every message"
        )
        await site.wait_until(lambda: _swept_all(site, FLOOD), 30, "the sweep to clear the flood")
        status = await site.status()
        retained = status["retained"]
        # Bounded: no sweep ever found more than about two seconds of the flood.
        assert retained["largest_sweep"] <= 3 * RATE, retained
        assert retained["echoes"] == retained["cleared"] == FLOOD, retained
        assert peak_rss < MEMORY_LIMIT // 2, peak_rss
        # The sweep's own clears came back to the gateway and were not recorded as the device's.
        assert status["pipeline"]["committed"] == FLOOD + int(20 * seconds)
        # Nobody was disconnected: the broker never restarted, the gateway's link never dropped.
        assert site.broker_pid() == broker_pid
        assert (
            status["device_broker"]["connected"] and status["device_broker"]["since"] == link_since
        )
        assert await flooder.closed_by_broker(0.1) is False  # even the flooder stays connected
        broker_log = (site.config.broker_dir / "mosquitto.log").read_text(errors="replace")
        assert "out of memory" not in broker_log
        check_upstream_fields(site)
        result = await site.audit([neighbour])
        row = record(
            "retained flood (one device, 160 MB)",
            result.summary,
            faults=0,
            bad_inputs=FLOOD,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0 and row.offered == int(20 * seconds)
        print(
            f"retained flood: {FLOOD} x {BODY} B; largest sweep {retained['largest_sweep']}, "
            f"broker peak RSS {peak_rss / 1e6:.1f} MB"
        )
        await flooder.close()
        await neighbour.close()
    finally:
        await site.teardown()


async def _committed_at_least(site: Site, count: int) -> bool:
    return int((await site.status())["pipeline"]["committed"]) >= count


async def _swept_all(site: Site, count: int) -> bool:
    retained = (await site.status())["retained"]
    return int(retained["cleared"]) >= count and int(retained["echoes"]) >= count
