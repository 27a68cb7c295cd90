"""One recipient down for a long stretch while another customer streams: nobody else waits.

Time is compressed with a small outbox: ``max_rows: 400`` for two recipients gives each queue a
quota of 200 rows (the default sizing, max_rows ÷ recipients). Werk Nord's presses send only to
the oven maker, whose cloud is down the whole time; Werk Süd's mill sends only to the energy
provider, which is up. Before per-recipient quotas the oven maker's backlog reached the global
limit and the gateway stopped taking anyone's messages; now the oven maker's queue stops at its
quota, the rest of its releases are recorded as withheld, and Werk Süd does not notice.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import orjson
import pytest

from gateway.devices.registry import Registry
from tests.faults.site import ReliableDevice, Site, body, check_upstream_fields, stream
from tests.faults.summary import LONG, record
from tests.gateway.test_durability import POLICY as MONITORING_POLICY

pytestmark = pytest.mark.fault

MILL_POLICY = """
einblick_policy: 1
customer: werk-sued
name: Werk Süd
language: de
devices:
  - id: mill-1
    name: Mühle 1
    kind: press
    topics:
      - pattern: "werk-sued/mill-1/telemetry"
        stream: telemetry
grants:
  - id: billing
    recipient: energy-provider
    purpose: {de: "Abrechnung", en: "Billing"}
    legal_basis: contract
    devices: [mill-1]
    topic: "energy/{device}"
    fields:
      seq: keep
      energy_kwh: {round: 0.1}
"""

QUOTA = 200  # rows per recipient: max_rows 400 ÷ 2 recipients
# Werk Süd's messages, device → energy provider's broker, while the oven maker is down. Measured
# on a 2-core box shared with other work: p50 2 ms, p99 12 ms, max 22 ms. The bounds leave room
# for a busy machine; with the oven maker's backlog pausing intake (no quota) nothing of Werk
# Süd's arrives at all while it is down, and the test fails waiting for it.
P99_BOUND_S = 1.0
MAX_BOUND_S = 3.0


async def test_one_recipient_down_delays_nothing_for_another_customer(tmp_path: Path) -> None:
    per_device = 5_000 if LONG else 1_000
    rate = 50.0
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup(policy=MONITORING_POLICY)
        (site.config_path.parent / "policies" / "werk-sued.yaml").write_text(
            MILL_POLICY, encoding="utf-8"
        )
        registry = Registry(site.config.data_path / "devices.json")
        _, mill_password = registry.add("werk-sued", "mill-1", name="Mühle 1", kind="press")
        assert mill_password is not None
        registry.save()
        with site.config_path.open("a", encoding="utf-8") as handle:
            handle.write("outbox:\n  max_rows: 400\n")
        await site.start_gateway()
        status = await site.status()
        oven = next(u for u in status["upstreams"] if u["recipient"] == "oven-maker")
        assert oven["queue"]["quota_rows"] == QUOTA and oven["queue"]["when_full"] == "withhold"

        await site.clouds["oven-maker"].stop()  # down before the first message, for the whole run
        site.faults += 1
        await site.wait_until(_oven_down(site), 20, "the gateway to see the oven maker down")

        presses = {name: site.device(name) for name in ("press-1", "press-2")}
        mill = ReliableDevice(site.config.broker.port, "werk-sued", "mill-1", mill_password)
        sent_at: dict[int, float] = {}

        async def mill_stream() -> None:
            begun = time.monotonic()
            for seq in range(per_device):
                sent_at[seq] = time.monotonic()
                await mill.publish(seq, "werk-sued/mill-1/telemetry", body("mill-1", seq))
                ahead = seq / rate - (time.monotonic() - begun)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await mill.drain()

        async with asyncio.TaskGroup() as tasks:
            for name, press in presses.items():
                tasks.create_task(stream(press, name, per_device, rate), name=f"stream-{name}")
            tasks.create_task(mill_stream(), name="stream-mill-1")

        # Werk Süd: everything arrived while the oven maker was still down.
        energy = site.spies["energy-provider"]
        await site.wait_until(
            lambda: len(_first_arrivals(energy.received)) >= per_device,
            30,
            "Werk Süd's messages at the energy provider",
        )
        latencies = sorted(t - sent_at[seq] for seq, t in _first_arrivals(energy.received).items())
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"\nWerk Süd latency with the oven maker down: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
        assert p99 < P99_BOUND_S, f"p99 {p99:.3f} s"
        assert latencies[-1] < MAX_BOUND_S, f"max {latencies[-1]:.3f} s"

        # The oven maker's queue stopped at its quota; the rest was recorded, intake never paused.
        async def all_decided() -> bool:
            queue = _oven(await site.status())["queue"]
            return bool(queue["rows"] + queue["withheld_at_quota"] == 2 * per_device)

        await site.wait_until(all_decided, 30, "every press message to be decided")
        status = await site.status()
        queue = _oven(status)["queue"]
        assert queue["rows"] == QUOTA and queue["withheld_at_quota"] == 2 * per_device - QUOTA
        assert (
            status["pipeline"]["paused_because"] is None and not status["pipeline"]["outbox_full"]
        )
        assert status["device_broker"]["connected"], status["device_broker"]

        # The oven maker returns: its queue is delivered, then the outbox is empty.
        await site.clouds["oven-maker"].start()
        await site.wait_until(site.outbox_empty, 60, "the oven maker's queue to drain")
        oven_spy = site.spies["oven-maker"]
        await site.wait_until(
            lambda: len({(m.topic, m.payload) for m in oven_spy.received}) >= QUOTA,
            20,
            "the oven maker's queued messages",
        )
        assert site.process is not None and site.process.returncode is None, "the gateway died"
        check_upstream_fields(site)
        devices = [*presses.values(), mill]
        result = await site.audit(devices, max_duplicates=500)
        row = record(
            "recipient down, others stream",
            result.summary,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0
        assert row.offered == 3 * per_device
        assert row.forwarded == per_device + QUOTA  # all of Werk Süd + the oven maker's queue
        assert row.withheld == 2 * per_device - QUOTA
        assert result.summary["reasons"] == {"recipient_queue_full": 2 * per_device - QUOTA}
        for device in devices:
            await device.close()
    finally:
        await site.teardown()


def _oven(status: dict[str, object]) -> dict[str, object]:
    upstreams = status["upstreams"]
    assert isinstance(upstreams, list)
    found: dict[str, object] = next(u for u in upstreams if u["recipient"] == "oven-maker")
    return found


def _oven_down(site: Site) -> object:
    async def check() -> bool:
        return not _oven(await site.status())["connected"]

    return check


def _first_arrivals(received: list[object]) -> dict[int, float]:
    """Mill seq → when it first reached the spy (time.monotonic, as in this process)."""
    first: dict[int, float] = {}
    for message in received:
        topic = getattr(message, "topic", "")
        if topic != "energy/mill-1":
            continue
        seq = int(orjson.loads(getattr(message, "payload", b"{}"))["seq"])
        first.setdefault(seq, float(getattr(message, "received", 0.0)))
    return first


# Werk Süd's mill sends to the same recipient as Werk Nord's presses: the oven maker is shared.
MILL_SHARING_POLICY = MILL_POLICY.replace(
    """grants:
  - id: billing""",
    """grants:
  - id: wear
    recipient: oven-maker
    purpose: {de: "Verschleißüberwachung", en: "Wear monitoring"}
    legal_basis: contract
    devices: [mill-1]
    topic: "mills/{device}"
    fields:
      seq: keep
      force_kn: keep
  - id: billing""",
)
SHARE = QUOTA // 2  # the oven maker's 200 rows, shared by the two customers with grants to it


async def test_one_customers_flood_at_a_shared_down_recipient_withholds_nothing_of_another(
    tmp_path: Path,
) -> None:
    """Werk Nord's presses flood the oven maker while it is down; Werk Süd's mill then sends to
    the same recipient. Before the quota was split per customer, the presses' backlog took the
    whole queue and every mill release to the oven maker was withheld."""
    per_press = 300  # together 600: six times Werk Nord's share
    mill_count = SHARE - 20  # fits Werk Süd's share with room to spare
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup(policy=MONITORING_POLICY)
        (site.config_path.parent / "policies" / "werk-sued.yaml").write_text(
            MILL_SHARING_POLICY, encoding="utf-8"
        )
        registry = Registry(site.config.data_path / "devices.json")
        _, mill_password = registry.add("werk-sued", "mill-1", name="Mühle 1", kind="press")
        assert mill_password is not None
        registry.save()
        with site.config_path.open("a", encoding="utf-8") as handle:
            handle.write("outbox:\n  max_rows: 400\n")
        await site.start_gateway()
        shares = _oven(await site.status())["queue"]["customers"]  # type: ignore[index]
        assert {c: s["quota_rows"] for c, s in shares.items()} == {
            "werk-nord": SHARE,
            "werk-sued": SHARE,
        }

        await site.clouds["oven-maker"].stop()
        site.faults += 1
        await site.wait_until(_oven_down(site), 20, "the gateway to see the oven maker down")

        presses = {name: site.device(name) for name in ("press-1", "press-2")}
        async with asyncio.TaskGroup() as tasks:
            for name, press in presses.items():
                tasks.create_task(stream(press, name, per_press, 50.0), name=f"stream-{name}")

        async def presses_decided() -> bool:
            nord = _oven(await site.status())["queue"]["customers"]["werk-nord"]  # type: ignore[index]
            return bool(nord["rows"] + nord["withheld_at_quota"] == 2 * per_press)

        await site.wait_until(presses_decided, 30, "every press message to be decided")

        # Werk Nord's share is full; now Werk Süd's mill sends to the same, still-down recipient.
        mill = ReliableDevice(site.config.broker.port, "werk-sued", "mill-1", mill_password)
        for seq in range(mill_count):
            await mill.publish(seq, "werk-sued/mill-1/telemetry", body("mill-1", seq))
        await mill.drain()
        energy = site.spies["energy-provider"]
        await site.wait_until(  # the mill's billing releases are the fence: all decided
            lambda: len(_first_arrivals(energy.received)) >= mill_count,
            30,
            "Werk Süd's messages at the energy provider",
        )
        status = await site.status()
        queue = _oven(status)["queue"]
        sued = queue["customers"]["werk-sued"]  # type: ignore[index]
        nord = queue["customers"]["werk-nord"]  # type: ignore[index]
        assert sued["withheld_at_quota"] == 0, sued  # not one of Werk Süd's releases withheld
        assert sued["rows"] == mill_count, sued
        assert nord["rows"] == SHARE and nord["withheld_at_quota"] == 2 * per_press - SHARE
        assert status["pipeline"]["paused_because"] is None, status["pipeline"]

        # The oven maker returns: both customers' queued releases are delivered.
        await site.clouds["oven-maker"].start()
        await site.wait_until(site.outbox_empty, 60, "the oven maker's queue to drain")
        oven_spy = site.spies["oven-maker"]
        await site.wait_until(
            lambda: len({(m.topic, m.payload) for m in oven_spy.received}) >= SHARE + mill_count,
            20,
            "the oven maker's queued messages",
        )
        mills = {m.payload for m in oven_spy.received if m.topic == "mills/mill-1"}
        assert len(mills) == mill_count
        assert site.process is not None and site.process.returncode is None, "the gateway died"
        check_upstream_fields(site)
        devices = [*presses.values(), mill]
        result = await site.audit(devices, max_duplicates=500)
        row = record(
            "shared recipient down, one customer floods",
            result.summary,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0
        assert row.offered == 2 * per_press + mill_count
        assert row.withheld == 2 * per_press - SHARE  # all of them Werk Nord's (above)
        assert result.summary["reasons"] == {"recipient_queue_full": 2 * per_press - SHARE}
        for device in devices:
            await device.close()
    finally:
        await site.teardown()
