"""``einblick handover``: where a move stands is read from the logs, and each refusal says what
to do (fast, on logs written by the log's own code with real keys); against running instances
behind a real Mosquitto, a move interrupted after the old instance closed the log is finished by
running the same command again, and a move whose releases cannot leave is refused with nothing
moved and nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from gateway.commands.handover import HandoverRefused, plan
from gateway.config import load_config
from gateway.log.keys import Signer
from gateway.log.transfer import close_tree
from gateway.operations import handover_model as ops
from gateway.operations.cluster import load_instances
from gateway.operations.control import ControlError, ask, request
from gateway.operations.handover import Handovers
from gateway.operations.holds import Hold, hold_path, read_hold
from policies.decision import Decision
from policies.message import Message
from tests.faults.cluster_site import ClusterSite, stream_body
from tests.faults.site import ReliableDevice, Spy
from tests.gateway.clocks import SetClock
from tests.gateway.test_cluster_view import (
    INSTANCES,
    cluster_block,
    hand_over,
    instance,
    write_tree,
)
from tests.log.conftest import Log, make_draft
from tests.policies.conftest import make_engine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(tmp_path: Path) -> list[Path]:
    block = cluster_block({"hall-a": "werk-a", "hall-b": "werk-b"})
    return [instance(tmp_path, n, block) for n in INSTANCES]


def close_only(old: Path, new: Path, customer: str) -> None:
    """The old instance's half of a move (``close_tree``), as a crash right after it leaves it."""
    old_config, new_config = load_config(old), load_config(new)
    new_config.signing_key_path.parent.mkdir(parents=True, exist_ok=True)
    new_key = Signer.generate(new_config.signing_key_path)
    source = Log(
        old_config.database_path, Signer.load(old_config.signing_key_path), old_config.instance
    )
    source.conn.execute("BEGIN IMMEDIATE")
    close_tree(
        source.conn,
        source.writer,
        customer,
        new_origin=f"{new_config.instance}/{customer}",
        new_key=new_key.public,
        now=make_draft(10).at,
    )
    source.conn.execute("COMMIT")
    source.close()


def test_a_move_starts_at_the_instance_holding_the_log(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    move = plan(load_instances(cluster), "werk-a", "hall-c")
    assert (move.source.instance, move.target.instance, move.closed) == ("hall-a", "hall-c", False)
    assert plan(load_instances(cluster), "werk-a", "hall-c", "hall-a").source.instance == "hall-a"


def test_a_move_elsewhere_is_refused_while_another_instance_keeps_a_hold(
    cluster: list[Path],
) -> None:
    """hall-a could not drain hall-b's hold after a refused release, so hall-b keeps it and
    only it has what was published meanwhile: moving the customer to hall-c instead would
    leave those messages to nobody."""
    write_tree(cluster[0], "werk-a", "hall-a")
    kept = load_config(cluster[1])
    hold = Hold(
        customer="werk-a", client_id="einblick-hall-b-hold-werk-a", filters=["werk-a/#"], since=1.0
    )
    kept.data_path.mkdir(parents=True, exist_ok=True)
    hold_path(kept.data_path, "werk-a").write_bytes(hold.model_dump_json().encode())
    finish = "Finish that move first: einblick handover --customer werk-a --to hall-b"
    with pytest.raises(HandoverRefused, match=f"'hall-b' keeps a hold session .* {finish}"):
        plan(load_instances(cluster), "werk-a", "hall-c")
    assert plan(load_instances(cluster), "werk-a", "hall-b").target.instance == "hall-b"


def test_an_unknown_instance_is_refused(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    with pytest.raises(HandoverRefused, match=r"unknown instance 'hall-x': .* hall-a, hall-b"):
        plan(load_instances(cluster), "werk-a", "hall-x")
    with pytest.raises(HandoverRefused, match="its configuration is not among --instances"):
        plan(load_instances(cluster[:2]), "werk-a", "hall-c")


def test_a_customer_not_owned_by_the_named_source_is_refused(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    with pytest.raises(HandoverRefused, match="log is with instance 'hall-a', not 'hall-b'"):
        plan(load_instances(cluster), "werk-a", "hall-c", "hall-b")


def test_a_target_that_already_owns_the_customer_is_refused(cluster: list[Path]) -> None:
    write_tree(cluster[1], "werk-b", "hall-b")
    with pytest.raises(HandoverRefused, match="already belongs to instance 'hall-b'"):
        plan(load_instances(cluster), "werk-b", "hall-b")


def test_a_customer_without_a_log_is_refused_with_what_to_do(cluster: list[Path]) -> None:
    with pytest.raises(HandoverRefused, match=r"no log on any instance .* list the customer"):
        plan(load_instances(cluster), "werk-a", "hall-c")


def test_a_half_done_move_is_resumed_and_no_other_started(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    close_only(cluster[0], cluster[2], "werk-a")
    move = plan(load_instances(cluster), "werk-a", "hall-c")
    assert (move.source.instance, move.closed) == ("hall-a", True)
    with pytest.raises(HandoverRefused, match=r"handed over by 'hall-a' to 'hall-c'.*--to hall-c"):
        plan(load_instances(cluster), "werk-a", "hall-b")


def test_a_move_back_to_an_instance_holding_an_older_copy_is_refused_before_it_starts(
    cluster: list[Path],
) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    hand_over(cluster[0], cluster[2], "werk-a")  # hall-a -> hall-c, done
    with pytest.raises(HandoverRefused, match="'hall-a' still holds the earlier part"):
        plan(load_instances(cluster), "werk-a", "hall-a")
    assert plan(load_instances(cluster), "werk-a", "hall-b").source.instance == "hall-c"


def test_the_command_prints_the_refusal_and_exits_2(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    command = ["handover", "--customer", "werk-a", "--to", "hall-x", "--instances"]
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *command, *map(str, cluster)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("einblick: unknown instance 'hall-x'"), done.stderr


# -- against running instances -------------------------------------------------------------------

MOVED = "werk-a"
CUSTOMERS = ("werk-a", "werk-b")
LISTED = {"hall-a": ["werk-a"], "hall-b": ["werk-b"]}


async def handover(site: ClusterSite, *extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "handover",
        "--customer",
        MOVED,
        "--to",
        "hall-b",
        "--json",
        *extra,
        "--instances",
        *map(str, site.configs.values()),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@dataclass
class Moving:
    """Two instances running, hall-a deciding werk-a; its device publishes on ``topic``."""

    site: ClusterSite
    spy: Spy  # what the recipient received
    device: ReliableDevice

    topic = f"{MOVED}/press-1/telemetry"

    async def publish(self, *seqs: int) -> None:
        for seq in seqs:
            await self.device.publish(seq, self.topic, stream_body(MOVED, seq))


@contextlib.asynccontextmanager
async def moving(tmp_path: Path, forwarded: int) -> AsyncIterator[Moving]:
    """Both instances started and the first ``forwarded`` messages of werk-a forwarded by
    hall-a (so the move starts from a customer whose releases flow); the site torn down after."""
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), CUSTOMERS, LISTED)
    try:
        await site.setup()
        for name in ("hall-a", "hall-b"):
            await site.start(name)
        assert site.spy is not None
        spy = site.spy
        moved = Moving(site, spy, site.device(MOVED))
        await moved.publish(*range(forwarded))
        await site.wait_until(lambda: len(spy.received) >= forwarded, 30, "hall-a forwarding")
        yield moved
    finally:
        await site.teardown()


async def close_for_move(site: ClusterSite, target_db: str | None = None) -> ops.ReleaseReply:
    """The command's first steps, then it stops: hall-b holds werk-a's messages and hall-a
    closed its log, which nobody has taken over yet."""
    old, new = site.config("hall-a").control_socket, site.config("hall-b").control_socket
    prepared = await ask(old, ops.HANDOVER_PREPARE, ops.HandoverRequest(customer=MOVED))
    hold = await ask(
        new, ops.HANDOVER_HOLD, ops.HoldRequest(customer=MOVED, filters=prepared.filters)
    )
    return await ask(
        old,
        ops.HANDOVER_RELEASE,
        ops.ReleaseRequest(
            customer=MOVED, to_origin=f"hall-b/{MOVED}", new_key=hold.key, target_db=target_db
        ),
    )


async def test_a_move_interrupted_after_the_old_log_closed_is_finished_by_running_it_again(
    tmp_path: Path,
) -> None:
    async with moving(tmp_path, forwarded=5) as moved:
        site, spy, device = moved.site, moved.spy, moved.device
        old = site.config("hall-a").control_socket
        # The command's first steps, then it dies: the log is closed, not yet taken over.
        await close_for_move(site)
        # hall-a no longer runs werk-a's policy: nothing it could decide would have a tree
        policies = await request(old, "policies")
        assert MOVED not in {p["customer"] for p in policies["customers"]}
        # Meanwhile the device goes on: only the hold session takes its messages now.
        await moved.publish(*range(5, 15))
        await device.drain()
        assert read_hold(site.config("hall-b").data_path, MOVED) is not None
        move = plan(load_instances(list(site.configs.values())), MOVED, "hall-b")
        assert (move.source.instance, move.closed) == ("hall-a", True)

        code, out, err = await handover(site)
        assert code == 0, err
        figures = orjson.loads(out)
        assert figures["resumed"] is True
        assert figures["held"] >= 10  # the ten published while nobody decided werk-a
        await site.wait_until(
            lambda: len({m.payload for m in spy.received}) >= 15, 30, "hall-b forwarding the held"
        )
        assert read_hold(site.config("hall-b").data_path, MOVED) is None  # the hold is ended
        # Run once more: the move is done, the command says so and moves nothing.
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out) == {
            "customer": MOVED,
            "from": "hall-a",
            "to": "hall-b",
            "status": "already moved",
            "old_copy_kept": None,
        }
        await device.close()


async def test_a_move_whose_releases_cannot_leave_is_refused_and_nothing_moves(
    tmp_path: Path,
) -> None:
    async with moving(tmp_path, forwarded=1) as moved:
        site, spy, device = moved.site, moved.spy, moved.device
        assert site.cloud is not None
        await site.cloud.stop()  # the recipient is gone: werk-a's next release stays queued
        await moved.publish(1)
        await device.drain()

        async def queued() -> bool:
            status = await site.status("hall-a")
            return any(u["outbox_depth"] for u in status["upstreams"])

        await site.wait_until(queued, 30, "a release of werk-a queued at hall-a")
        code, _, err = await handover(site, "--wait", "1")
        assert code == 2, err
        assert "releases still wait to be sent (1 for oven-maker)" in err, err
        assert "Nothing moved" in err
        # Nothing moved: no hold left on hall-b, hall-a still decides werk-a and sends it all.
        assert read_hold(site.config("hall-b").data_path, MOVED) is None
        with pytest.raises(ControlError, match="does not own customer 'werk-a'"):
            await ask(
                site.config("hall-b").control_socket,
                ops.HANDOVER_PREPARE,
                ops.HandoverRequest(customer=MOVED),
            )
        await moved.publish(2)
        await device.drain()
        await site.cloud.start()
        await site.wait_until(
            lambda: len({m.payload for m in spy.received}) >= 3, 60, "everything upstream"
        )
        assert site.chains("hall-b") == set()
        await device.close()


def reasons(db: Path, customer: str) -> list[str | None]:
    """The reason of each of ``customer``'s entries, in tree order (the log's own bodies)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT b.doc FROM entries e JOIN chains c ON c.id = e.chain_id"
            " JOIN bodies b ON b.id = e.body_id WHERE c.name = ? ORDER BY e.idx",
            (customer,),
        ).fetchall()
    finally:
        conn.close()
    return [orjson.loads(bytes(doc)).get("reason") for (doc,) in rows]


async def test_a_restriction_made_before_the_move_holds_on_the_new_instance(
    tmp_path: Path,
) -> None:
    """The customer restricted the processing (GDPR Art. 18) on the old instance: after the
    move the new instance withholds its messages for the same reason, from the first one."""
    async with moving(tmp_path, forwarded=1) as moved:
        site, spy, device = moved.site, moved.spy, moved.device
        old = site.config("hall-a").control_socket
        await request(old, "restrict", customer=MOVED, grant="monitoring", by="Anna Weber")
        code, out, err = await handover(site)
        assert code == 0, err
        moved_at = orjson.loads(out)["entries"]
        await moved.publish(1, 2)
        await device.drain()
        db = site.config("hall-b").database_path
        await site.wait_until(
            lambda: len(reasons(db, MOVED)) >= moved_at + 2, 30, "hall-b deciding werk-a"
        )
        assert reasons(db, MOVED)[moved_at:] == ["restricted", "restricted"]
        assert len(spy.received) == 1  # only the message from before the restriction
        await device.close()


async def test_the_windows_a_handover_closes_are_judged_at_every_time_the_clock_may_be() -> None:
    """Before a customer leaves, its open aggregation windows close and their summaries are
    recorded; while the system clock is behind, a summary whose grant applies at one of the
    times and not at another is withheld (``clock_behind``), as at the window closer."""
    grant = {"aggregate": {"window": "5m", "fields": {"t": ["mean"]}}, "hours": ["08:00-18:00"]}
    noon = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
    recorded: list[Decision] = []

    async def record(decisions: list[Decision], now: datetime) -> None:
        recorded.extend(decisions)

    for behind, code in (
        (noon - timedelta(hours=1), None),
        (noon - timedelta(hours=11), "clock_behind"),
    ):
        engine, recorded[:] = make_engine(grant), []
        for second in range(3):
            at = noon + timedelta(seconds=second)
            engine.evaluate(Message("acme/dev/anna", b'{"t":1}', at), at)
        parts = SimpleNamespace(
            admission=SimpleNamespace(engine=engine),
            clock=SetClock(lambda: noon + timedelta(minutes=1), behind=behind),
            pipeline=lambda: SimpleNamespace(record=record),
        )
        await Handovers(parts)._flush_windows("acme")  # type: ignore[arg-type]
        (summary,) = recorded  # the window closed at the handover, recorded once
        assert (summary.reason.code if summary.reason else None) == code
