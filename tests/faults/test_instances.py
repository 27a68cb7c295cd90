"""Three gateway instances behind one external Mosquitto, each owning some customers. One is
killed with SIGKILL and stays down (5 s in CI, 30 s in the long form) while devices of every
customer keep publishing; the others go on, its persistent session keeps its customers' messages,
and after its restart every message is forwarded or recorded withheld, each customer's log lives
in exactly one instance's database and verifies there. Another's log disk fills: it fails closed
for its own customers only, and resumes by itself when space returns. And a customer is moved
from one instance to another with ``einblick handover`` while every device publishes: nothing
lost, duplicates within the bound the command reports, one history."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from gateway.log.leftovers import personal_rows
from gateway.operations.child import stop_gateway
from gateway.operations.cluster import check_ownership
from gateway.operations.control import request
from tests.faults.cluster_site import ClusterSite, stream_body
from tests.faults.site import ReliableDevice
from tests.faults.summary import LONG, record
from tests.faults.test_outages import fill, small_disk

pytestmark = pytest.mark.fault


def left_of(db: Path, customer: str) -> int:
    """``customer``'s personal rows in the log database at ``db`` (gateway.log.leftovers)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return personal_rows(conn, customer).total
    finally:
        conn.close()


INSTANCES = ("hall-a", "hall-b", "hall-c")
CUSTOMERS = ("werk-a", "werk-b", "werk-c", "werk-d", "werk-e", "werk-f")
# One customer listed per instance, the other three placed by rendezvous hashing.
LISTED = {"hall-a": ["werk-a"], "hall-b": ["werk-b"], "hall-c": ["werk-c"]}
# The device broker's in-flight window per gateway session (MosquittoSettings.max_inflight): a
# kill -9 can leave at most this many messages committed but not yet acknowledged; the broker
# delivers them again and they are decided again, so each kill adds at most this many duplicates.
INFLIGHT = 1000


async def stream(device: ReliableDevice, customer: str, total: int, rate: float) -> None:
    started = time.monotonic()
    for seq in range(total):
        await device.publish(seq, f"{customer}/press-1/telemetry", stream_body(customer, seq))
        ahead = seq / rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    await device.drain()


async def stream_until(
    device: ReliableDevice, customer: str, minimum: int, done: asyncio.Event
) -> None:
    """Like ``stream`` at 40/s, for at least ``minimum`` messages and until ``done``."""
    started = time.monotonic()
    seq = 0
    while seq < minimum or not done.is_set():
        await device.publish(seq, f"{customer}/press-1/telemetry", stream_body(customer, seq))
        seq += 1
        ahead = seq / 40.0 - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    await device.drain()


async def run_scenario(
    site: ClusterSite,
    per_device: int,
    fault: Callable[[Callable[..., int]], Awaitable[None]],
) -> dict[str, int]:
    """Start every instance, stream every customer's device at 40/s while ``fault`` runs (it
    gets ``arrived(instance, other=False)``: messages upstream of that instance's customers, or
    of all others'), then check one status view, one tree per customer in its owner's log, and
    audit each instance; returns the audits' totals."""
    rate = 40.0  # per device; six devices
    await site.setup()
    for instance in INSTANCES:
        await site.start(instance)
    owners = {c: site.owner(c) for c in CUSTOMERS}
    assert {owners[c] for c in ("werk-a", "werk-b", "werk-c")} == set(INSTANCES)
    devices = {c: site.device(c) for c in CUSTOMERS}
    assert site.spy is not None
    spy = site.spy

    def arrived(instance: str, *, other: bool = False) -> int:
        return sum(
            1 for m in spy.received if (owners[m.topic.split("/", 1)[0]] == instance) != other
        )

    async with asyncio.TaskGroup() as tasks:
        for customer, device in devices.items():
            tasks.create_task(stream(device, customer, per_device, rate), name=f"stream-{customer}")
        tasks.create_task(fault(arrived), name="fault")
    await site.wait_until(site.drained, 60, "every instance's outbox to drain")
    await site.wait_until(
        lambda: len({(m.topic, m.payload) for m in spy.received}) >= len(CUSTOMERS) * per_device,
        30,
        "every message upstream",
    )
    # One status over every instance: each answers, each with its own device session.
    viewed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "status",
        "--json",
        "--instances",
        *map(str, site.configs.values()),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await viewed.communicate()
    assert viewed.returncode == 0
    statuses = orjson.loads(out)
    assert sorted(statuses) == sorted(INSTANCES)
    assert all(s["device_broker"]["connected"] for s in statuses.values())
    totals = {"offered": 0, "forwarded": 0, "withheld": 0, "lost": 0, "duplicates": 0}
    for instance in INSTANCES:
        # Exactly one writer per customer: each tree is in its owner's database only, and no
        # instance so much as saw another's customers (no '_gateway' tree of unknown devices).
        mine = {c for c in CUSTOMERS if owners[c] == instance}
        assert site.chains(instance) == mine, instance
        summary, problems, code = await site.audit(
            instance, devices, max_duplicates=INFLIGHT * max(1, site.faults)
        )
        assert code == 0, f"{instance}: {problems}"
        assert summary["log_ok"] is True
        for key in totals:
            totals[key] += int(summary[key])
    for device in devices.values():
        await device.close()
    return totals


async def test_an_instance_killed_for_a_while_loses_nothing_and_stops_no_other(
    tmp_path: Path,
) -> None:
    down_s, per_device = (30.0, 3_000) if LONG else (5.0, 500)
    site = ClusterSite(tmp_path, INSTANCES, CUSTOMERS, LISTED)
    started = time.monotonic()
    victim = "hall-b"

    async def killer(arrived: Callable[..., int]) -> None:
        await site.wait_until(lambda: arrived(victim) >= 50, 30, "the victim forwarding")
        await site.kill(victim)
        # While it is down the other instances go on forwarding their customers' messages.
        others = arrived(victim, other=True)
        await site.wait_until(
            lambda: arrived(victim, other=True) >= others + 100, 30, "the others forwarding"
        )
        await asyncio.sleep(down_s)  # the outage itself: its length is the scenario
        await site.start(victim)

    try:
        totals = await run_scenario(site, per_device, killer)
        row = record(
            f"3 instances, one kill -9 for {down_s:.0f} s",
            totals,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert row.offered == len(CUSTOMERS) * per_device
        assert row.forwarded == row.offered and row.lost == 0
        assert site.faults == 1
    finally:
        await site.teardown()


async def test_an_instances_full_disk_stops_only_its_customers_and_loses_nothing(
    tmp_path: Path,
) -> None:
    per_device = 1_500 if LONG else 600
    victim = "hall-c"
    started = time.monotonic()
    with small_disk(tmp_path / "disk") as disk:
        site = ClusterSite(
            tmp_path, INSTANCES, CUSTOMERS, LISTED, databases={victim: disk / "einblick.db"}
        )

        async def filler(arrived: Callable[..., int]) -> None:
            await site.wait_until(lambda: arrived(victim) >= 50, 30, "the victim forwarding")
            ballast = fill(disk)
            site.faults += 1

            async def failing() -> bool:
                return (await site.status(victim))["pipeline"]["failing_closed"] is not None

            await site.wait_until(failing, 60, f"{victim} to report that it fails closed")
            # Fail closed for its customers, business as usual for everyone else's: while the
            # others forward 100 more, nothing more of the victim's customers leaves.
            stuck, others = arrived(victim), arrived(victim, other=True)
            await site.wait_until(
                lambda: arrived(victim, other=True) >= others + 100, 30, "the others forwarding"
            )
            assert await failing(), "the disk was freed by someone else?"
            assert arrived(victim) == stuck, "messages left while their log could not record"
            ballast.unlink()  # space returns; nobody restarts anything

            async def recovered() -> bool:
                return not await failing()

            await site.wait_until(recovered, 30, f"{victim} to resume by itself")

        try:
            totals = await run_scenario(site, per_device, filler)
            row = record(
                "3 instances, one disk full",
                totals,
                faults=site.faults,
                seconds=time.monotonic() - started,
            )
            assert row.offered == len(CUSTOMERS) * per_device
            assert row.forwarded == row.offered and row.lost == 0
        finally:
            await site.teardown()
            shutil.rmtree(disk, ignore_errors=True)


async def gateway_cli(*args: str | Path) -> tuple[int, str, str]:
    """``python -m gateway ARGS``: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_a_customer_handed_over_under_load_loses_nothing_and_stays_one_history(
    tmp_path: Path,
) -> None:
    """``einblick handover`` moves werk-a (listed under hall-a) to hall-b while every customer's
    device publishes at 40/s: every message forwarded or withheld with a reason, none lost,
    duplicates within the bound the command reports; werk-a's export over all instances is one
    history that a bundle kept from before the move still verifies against; after both
    instances restart, their logs still agree that hall-b owns werk-a."""
    per_device = 2_000 if LONG else 400  # at least; every device goes on until the move is done
    moved, old, new = "werk-a", "hall-a", "hall-b"
    site = ClusterSite(tmp_path, INSTANCES, CUSTOMERS, LISTED)
    started = time.monotonic()
    figures: dict[str, object] = {}
    moved_on = asyncio.Event()  # the move is done and hall-b forwards werk-a: devices may stop
    configs = [site.configs[i] for i in INSTANCES] if site.configs else []

    async def move() -> None:
        assert site.spy is not None
        spy = site.spy

        def upstream(customer: str) -> int:
            return sum(1 for m in spy.received if m.topic.startswith(f"{customer}/"))

        await site.wait_until(lambda: upstream(moved) >= 50, 30, "werk-a forwarding")
        code, _, err = await gateway_cli(
            "export",
            "--customer",
            moved,
            "--out",
            tmp_path / "kept.bundle",
            "--instances",
            *configs,
        )
        assert code == 0, err
        code, out, err = await gateway_cli(
            "handover", "--customer", moved, "--to", new, "--json", "--instances", *configs
        )
        assert code == 0, err
        figures.update(orjson.loads(out))
        site.faults += 1  # the move is this scenario's disruption
        (tmp_path / "handover.json").write_text(out, encoding="utf-8")  # for the record
        # Still under load: werk-a's messages now leave through hall-b.
        forwarded = upstream(moved)
        await site.wait_until(lambda: upstream(moved) >= forwarded + 40, 30, "hall-b forwarding")
        moved_on.set()

    try:
        await site.setup()
        configs.extend(site.configs[i] for i in INSTANCES)
        for instance in INSTANCES:
            await site.start(instance)
        assert site.owner(moved) == old
        devices = {c: site.device(c) for c in CUSTOMERS}
        async with asyncio.TaskGroup() as tasks:
            for customer, device in devices.items():
                tasks.create_task(
                    stream_until(device, customer, per_device, moved_on), name=f"stream-{customer}"
                )
            tasks.create_task(move(), name="handover")
        assert site.spy is not None
        spy = site.spy
        await site.wait_until(site.drained, 60, "every instance's outbox to drain")
        offered = sum(len(d.published()) for d in devices.values())
        await site.wait_until(
            lambda: len({(m.topic, m.payload) for m in spy.received}) >= offered,
            30,
            "every message upstream",
        )
        assert figures["from"] == old and figures["to"] == new
        assert int(str(figures["held"])) > 0, "the hold session carried none of the messages"
        bound = int(str(figures["duplicates_at_most"]))

        # One history: werk-a's log is hall-b's now, continuing hall-a's; hall-a keeps the
        # closed part and writes nothing more in it.
        assert moved in site.chains(new) and moved in site.chains(old)
        bundle = tmp_path / "werk-a.bundle"
        code, _, err = await gateway_cli(
            "export", "--customer", moved, "--out", bundle, "--instances", *configs
        )
        assert code == 0, err
        key = site.config(old).signing_key_path.with_suffix(".pub")
        code, out, err = await gateway_cli(
            "verify", bundle, "--key", key, "--since", tmp_path / "kept.bundle"
        )
        assert code == 0, out + err
        assert out.startswith(f"{new}/{moved}: "), out
        # and hall-a's closed part holds none of werk-a's personal data any more
        assert figures["old_copy_kept"] is None
        assert left_of(site.config(old).database_path, moved) == 0

        owns: dict[str, set[str]] = {}
        for instance in INSTANCES:
            check_ownership(config := site.config(instance))  # what the logs record decides
            owns[instance] = {c for c in CUSTOMERS if config.owns(c)}
        assert moved in owns[new] and moved not in owns[old]
        totals = {"offered": 0, "forwarded": 0, "withheld": 0, "lost": 0, "duplicates": 0}
        for instance in INSTANCES:
            summary, problems, code = await site.audit(
                instance,
                devices,
                max_duplicates=bound if instance == new else 0,  # only the move's
                customers=owns[instance],
            )
            assert code == 0, f"{instance}: {problems}"
            assert summary["log_ok"] is True
            for k in totals:
                totals[k] += int(summary[k])
        row = record(
            "3 instances, a handover under load",
            totals,
            faults=site.faults,
            seconds=time.monotonic() - started,
        )
        assert row.offered == offered >= len(CUSTOMERS) * per_device
        assert row.forwarded == row.offered and row.lost == 0

        # After a restart of both, each still runs what its log says: werk-a on hall-b only.
        for instance in (old, new):
            await stop_gateway(site.processes.pop(instance))
            await site.start(instance)
        for instance, runs in ((old, False), (new, True)):
            policies = await request(site.config(instance).control_socket, "policies")
            running = {p["customer"] for p in policies["customers"]}
            assert (moved in running) is runs, (instance, running)
        for device in devices.values():
            await device.close()
    finally:
        await site.teardown()
