"""Hostile payloads against a real gateway: what one device sends costs only that device.

Two scenarios from issue 14, each against a gateway subprocess, a real Mosquitto and a second
customer whose device streams throughout:

- **Poison message.** 200 nested keys of 250 characters over 8,000 leaves (131 KB) from a device
  no grant covers. Every leaf's path repeated the whole chain: three ~400 MB strings, a
  ``MemoryError`` under a 2.5 GB address space, no acknowledgement, redelivery, the same death
  on every restart. Here the gateway runs with that limit (``prlimit(2)`` on its process, as
  ``prlimit --as=2500000000`` does) and must decide it, acknowledge it and keep forwarding.
- **Key flood.** 256 KiB messages of ~8,000 distinct keys each at the device rate limit (one
  54 KB message of distinct keys once added ~300 MB of database and WAL and 450 MB of RSS,
  never released). Here the gateway's RSS must stay under 150 MB and each message may add only
  a few KB of log.

For each: the other customer loses 0 messages, the gateway process stays the same process, the
audit finds nothing lost, and the figures are printed in the fault summary.
"""

from __future__ import annotations

import asyncio
import resource
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from gateway.devices.registry import Registry
from tests.faults.site import POLICY, RECIPIENTS, ReliableDevice, Site
from tests.faults.summary import LONG, record

pytestmark = pytest.mark.fault

ADDRESS_SPACE = 2_500_000_000  # bytes: an edge box's 2.5 GB, as in issue 14
RSS_LIMIT = 150 * 1024 * 1024
# Bytes of database one log entry may add, at most. A message makes one entry per recipient its
# customer's policy names (the policy's choice, not the device's): 2 in these scenarios.
LOG_PER_ENTRY = 5 * 1024
WAL_LIMIT = 16 * 1024 * 1024  # the WAL is a ring SQLite checkpoints at 1,000 pages (4 MB)
MAX_PAYLOAD = 256 * 1024

# The durability policy plus press-3, which no grant covers (the poison message's sender).
HOSTILE_POLICY = POLICY.replace(
    "grants:\n",
    "  - id: press-3\n    name: Presse 3\n    kind: press\n    topics:\n"
    '      - pattern: "factory/press-3/telemetry"\n        stream: telemetry\ngrants:\n',
    1,
)
OTHER_POLICY = """einblick_policy: 1
customer: werk-sued
name: Werk Süd
language: en
devices:
  - id: mixer-1
    name: Mixer 1
    kind: mixer
    topics:
      - pattern: "sued/mixer-1/telemetry"
        stream: telemetry
grants:
  - id: monitoring
    recipient: oven-maker
    purpose: {de: "Zustandsüberwachung", en: "Condition monitoring"}
    legal_basis: contract
    devices: [mixer-1]
    topic: "mixers/{device}"
    fields:
      seq: keep
      force_kn: keep
"""
OTHER_TOPIC = "sued/mixer-1/telemetry"


def poison(seq: int) -> bytes:
    inner: dict[str, object] = {f"k{i:04d}": seq for i in range(8000)}
    for level in range(200):
        inner = {f"{level:03d}" + "x" * 247: inner}
    return orjson.dumps(inner)


def key_flood(seq: int) -> bytes:
    """Just under 256 KiB of keys never seen before (and a granted ``seq``)."""
    body: dict[str, object] = {"seq": seq}
    i = 0
    while True:
        body[f"{seq:06d}-{i:05d}-reading-from-channel"] = i
        i += 1
        if i % 500 == 0 and len(orjson.dumps(body)) > MAX_PAYLOAD - 20_000:
            break
    while len(raw := orjson.dumps(body)) <= MAX_PAYLOAD - 40:
        body[f"{seq:06d}-{i:05d}-reading-from-channel"] = i
        i += 1
    assert len(raw) <= MAX_PAYLOAD
    return raw


def vm(pid: int, field: str) -> int:
    """A ``Vm…`` figure of ``pid`` from /proc, in bytes (VmRSS now, VmHWM its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def log_bytes(site: Site) -> tuple[int, int, int]:
    """(database bytes, WAL bytes, entries) after a passive checkpoint copied the WAL into the
    database (the WAL file itself is a ring SQLite reuses, its size a high-water mark)."""
    db = site.config.database_path
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        entries = int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0, entries


async def setup_site(tmp_path: Path) -> tuple[Site, ReliableDevice]:
    site = Site(tmp_path)
    await site.setup(
        devices=("press-1", "press-2", "press-3"),
        policy=HOSTILE_POLICY,
        pipeline="  device_max_rate: 100\n  device_burst: 500\n",  # the defaults, stated
    )
    (site.config.policies_path / "werk-sued.yaml").write_text(OTHER_POLICY, encoding="utf-8")
    registry = Registry(site.config.data_path / "devices.json")
    _, password = registry.add("werk-sued", "mixer-1", name="Mixer 1", kind="mixer")
    assert password is not None
    registry.save()
    await site.start_gateway()
    other = ReliableDevice(site.config.broker.port, "werk-sued", "mixer-1", password)
    return site, other


async def steady(device: ReliableDevice, total: int, rate: float) -> None:
    """The other customer's device: ``total`` ordinary messages at ``rate`` per second."""
    started = time.monotonic()
    for seq in range(total):
        body = orjson.dumps({"seq": seq, "force_kn": 100 + seq % 7, "operator": "SECRET"})
        await device.publish(seq, OTHER_TOPIC, body)
        ahead = seq / rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    await device.drain(timeout=300)


async def settle_and_audit(
    site: Site,
    devices: list[ReliableDevice],
    other: ReliableDevice,
    scenario: str,
    *,
    started: float,
    bad: int,
) -> None:
    """Wait until every message is decided and sent, then: the other customer lost nothing,
    the audit finds nothing lost, and the scenario's row goes into the fault summary."""
    offered = sum(len(d.acked) for d in devices)

    async def decided() -> bool:
        status = await site.status()
        return bool(status["pipeline"]["committed"] >= offered) and await site.outbox_empty()

    await site.wait_until(decided, 300, f"all {offered} messages decided and sent")
    got = {
        orjson.loads(m.payload)["seq"]
        for m in site.spies["oven-maker"].received
        if m.topic == "mixers/mixer-1"
    }
    assert got == set(range(len(other.acked))), "the other customer lost messages"
    result = await site.audit(devices)
    row = record(
        scenario, result.summary, faults=0, bad_inputs=bad, seconds=time.monotonic() - started
    )
    assert result.returncode == 0, result.problems
    assert row.lost == 0 and row.offered == offered


async def test_a_poison_message_under_an_edge_boxs_address_space_costs_only_its_sender(
    tmp_path: Path,
) -> None:
    site, other = await setup_site(tmp_path)
    started = time.monotonic()
    try:
        assert site.process is not None
        pid = site.process.pid
        resource.prlimit(pid, resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        db_before, _, entries_before = log_bytes(site)
        hostile = site.device("press-3")
        copies = 3
        bodies = [poison(seq) for seq in range(copies)]
        body = bodies[0]
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(steady(other, 100, 20.0), name="other-customer")

            async def attack() -> None:
                for seq in range(copies):
                    await hostile.publish(seq, "factory/press-3/telemetry", bodies[seq])
                await hostile.drain(timeout=120)

            tasks.create_task(attack(), name="poison")
        await settle_and_audit(
            site,
            [hostile, other],
            other,
            "poison message (131 KB deep keys)",
            started=started,
            bad=copies,
        )
        assert site.process.returncode is None, "the gateway died"
        assert site.process.pid == pid
        db_after, wal, entries_after = log_bytes(site)
        peak = vm(pid, "VmHWM")
        entries = entries_after - entries_before
        print(
            f"poison: {len(body)} B x {copies}; gateway peak RSS {peak / 2**20:.0f} MiB, "
            f"database +{(db_after - db_before) / 1024:.0f} KiB for {entries} entries, "
            f"WAL {wal / 2**20:.1f} MiB"
        )
        assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
        assert db_after - db_before <= entries * LOG_PER_ENTRY
        assert wal <= WAL_LIMIT
        log_text = site.gateway_log.read_text(errors="replace")
        assert "MemoryError" not in log_text and "Traceback" not in log_text, log_text[-3000:]
        await hostile.close()
        await other.close()
    finally:
        await site.teardown()


async def test_a_key_flood_at_the_device_rate_limit_keeps_memory_and_log_bounded(
    tmp_path: Path,
) -> None:
    site, other = await setup_site(tmp_path)
    started = time.monotonic()
    try:
        assert site.process is not None
        pid = site.process.pid
        resource.prlimit(pid, resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        db_before, _, entries_before = log_bytes(site)
        rss_before = vm(pid, "VmRSS")
        flooder = site.device("press-1")  # a granted device: its `seq` is released
        # What the flood guard lets a device do: a burst of 500 at once, then 100 per second.
        burst, rate = 500, 100.0
        total = burst + (1000 if LONG else 100)
        bodies = [key_flood(seq) for seq in range(total)]

        async def flood() -> None:
            begun = time.monotonic()
            for seq, body in enumerate(bodies):
                await flooder.publish(seq, "factory/press-1/telemetry", body)
                ahead = (seq - burst) / rate - (time.monotonic() - begun)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await flooder.drain(timeout=300)

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(steady(other, 200, 20.0), name="other-customer")
            tasks.create_task(flood(), name="key-flood")
        await settle_and_audit(
            site,
            [flooder, other],
            other,
            "key flood (256 KiB, distinct keys)",
            started=started,
            bad=total,
        )
        assert site.process.returncode is None and site.process.pid == pid
        db_after, wal, entries_after = log_bytes(site)
        peak, rss_after = vm(pid, "VmHWM"), vm(pid, "VmRSS")
        # All growth counted against the flood's entries (the other customer's add ~nothing).
        per_entry = (db_after - db_before) / (total * len(RECIPIENTS))
        print(
            f"key flood: {total} x {len(bodies[0])} B; gateway RSS {rss_before / 2**20:.0f} -> "
            f"{rss_after / 2**20:.0f} MiB (peak {peak / 2**20:.0f} MiB), database "
            f"+{(db_after - db_before) / 2**20:.1f} MiB for {entries_after - entries_before} "
            f"entries ({per_entry / 1024:.1f} KiB per flood entry, "
            f"{(db_after - db_before) / total / 1024:.1f} KiB per hostile message), "
            f"WAL {wal / 2**20:.1f} MiB"
        )
        assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
        assert per_entry <= LOG_PER_ENTRY, f"{per_entry:.0f} B per entry"
        assert wal <= WAL_LIMIT
        released = [m for m in site.spies["oven-maker"].received if m.topic == "presses/press-1"]
        assert sorted(orjson.loads(m.payload)["seq"] for m in released) == list(range(total))
        await flooder.close()
        await other.close()
    finally:
        await site.teardown()
