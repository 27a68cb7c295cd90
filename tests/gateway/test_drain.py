"""Draining a hold (gateway/operations/drain.py), against running instances behind a real
Mosquitto: what the hold kept while nobody decided the customer is handed to the pipeline of the
instance that took the log over, and forwarded, and the hold is ended. A release refused after
the old instance's UNSUBACK loses nothing: the old instance drains the hold and ends it, or,
when it cannot, the new instance keeps the hold and the same command run again decides it. A
release whose answer the command no longer waits for does not close the log; one whose answer
was lost after it closed the log goes on to the take, its hold kept."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import orjson
import pytest

from gateway.commands.handover import after_refusal, plan
from gateway.log.keys import Signer
from gateway.log.transfer import adopt_tree, open_tree_record, read_tree
from gateway.operations import handover_model as ops
from gateway.operations.child import stop_gateway
from gateway.operations.cluster import load_instances
from gateway.operations.control import ControlError, ask
from gateway.operations.holds import Hold, read_hold
from tests.gateway.test_handover import MOVED, Moving, close_for_move, handover, moving
from tests.log.conftest import Log, make_draft


async def test_a_move_interrupted_after_the_new_log_took_over_drains_the_hold_when_run_again(
    tmp_path: Path,
) -> None:
    """The new instance stopped right after it adopted the log, before it drained the hold:
    restarted, its log says it owns the customer; the same command run again drains what the
    hold kept meanwhile, so nothing published while nobody decided the customer is lost."""
    async with moving(tmp_path, forwarded=1) as moved:
        site, spy, device = moved.site, moved.spy, moved.device
        old, new = site.config("hall-a"), site.config("hall-b")
        released = await close_for_move(site)
        # hall-b stops; its log takes the tree over as its take step does, then it restarts
        await stop_gateway(site.processes.pop("hall-b"))
        await moved.publish(*range(1, 6))  # nobody decides these now: the hold keeps them
        await device.drain()
        closed = released.closed.tree()
        key = Signer.load(new.signing_key_path)
        target = Log(new.database_path, key, new.instance)
        target.conn.execute("BEGIN IMMEDIATE")
        adopt_tree(target.conn, read_tree(old.database_path, MOVED))
        target.writer.reload()
        target.writer.append([open_tree_record(closed, key, make_draft(0).at)])
        target.conn.execute("COMMIT")
        target.writer.committed()
        target.close()
        await site.start("hall-b")
        move = plan(load_instances(list(site.configs.values())), MOVED, "hall-b")
        assert (move.source.instance, move.closed) == ("hall-a", True)

        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out)["held"] >= 5
        await site.wait_until(
            lambda: len({m.payload for m in spy.received}) >= 6, 30, "hall-b forwarding the held"
        )
        assert read_hold(new.data_path, MOVED) is None
        await device.close()


async def _release_stuck(moved: Moving) -> None:
    """The recipient is down and a release of the customer waits at hall-a: a release of the
    customer is refused after its --wait, once its UNSUBACK has come."""
    site = moved.site
    assert site.cloud is not None
    await site.cloud.stop()
    await moved.publish(1)
    await moved.device.drain()

    async def queued() -> bool:
        status = await site.status("hall-a")
        return any(u["outbox_depth"] for u in status["upstreams"])

    await site.wait_until(queued, 30, "a release of werk-a queued at hall-a")


async def _held_while_stuck(moved: Moving) -> ops.HoldReply:
    """:func:`_release_stuck`, then the command's first two steps: hall-b holds werk-a."""
    await _release_stuck(moved)
    old = moved.site.config("hall-a").control_socket
    new = moved.site.config("hall-b").control_socket
    prepared = await ask(old, ops.HANDOVER_PREPARE, ops.HandoverRequest(customer=MOVED))
    return await ask(
        new, ops.HANDOVER_HOLD, ops.HoldRequest(customer=MOVED, filters=prepared.filters)
    )


async def _meanwhile(moved: Moving) -> None:
    """Once hall-a has dropped the customer's filters (its record of them says so), the device
    publishes 2..6: only the hold session receives them."""
    record = moved.site.config("hall-a").data_path / "subscriptions.json"

    def dropped() -> bool:
        return not any(MOVED in f for f in orjson.loads(record.read_bytes()))

    await moved.site.wait_until(dropped, 30, "hall-a dropping werk-a's filters")
    await moved.publish(*range(2, 7))
    await moved.device.drain()


async def _all_forwarded(moved: Moving, count: int) -> None:
    spy = moved.spy
    await moved.site.wait_until(
        lambda: len({m.payload for m in spy.received}) >= count, 60, "every message upstream"
    )


async def test_a_release_refused_after_the_unsuback_decides_what_only_the_hold_received(
    tmp_path: Path,
) -> None:
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        await _release_stuck(moved)
        command = asyncio.get_running_loop().create_task(
            handover(site, "--wait", "8"), name="handover-refused"
        )
        await _meanwhile(moved)
        code, _, err = await command
        assert code == 2, err
        assert "releases still wait to be sent (1 for oven-maker)" in err, err
        drained = int(err.split("The ")[1].split(maxsplit=1)[0])
        assert drained >= 5, err  # 2..6, which reached only the hold
        assert "hold session received meanwhile were decided here" in err, err
        assert read_hold(site.config("hall-b").data_path, MOVED) is None  # the hold is ended
        assert site.cloud is not None
        await site.cloud.start()
        await _all_forwarded(moved, 7)  # 0..6: nothing lost
        assert site.chains("hall-b") == set()
        await moved.device.close()


async def test_a_hold_the_old_instance_could_not_drain_is_kept_and_decided_on_the_run_again(
    tmp_path: Path,
) -> None:
    """The release names no hold (as an older command's), so hall-a cannot drain it: hall-b
    keeps the hold, which only it received 2..6 into, and the same command run again decides
    them there."""
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        old, new = site.config("hall-a").control_socket, site.config("hall-b").control_socket
        hold = await _held_while_stuck(moved)
        release = ops.ReleaseRequest(
            customer=MOVED, to_origin=f"hall-b/{MOVED}", new_key=hold.key, wait_s=8
        )
        releasing = asyncio.get_running_loop().create_task(
            ask(old, ops.HANDOVER_RELEASE, release, timeout=120), name="release-refused"
        )
        await _meanwhile(moved)
        with pytest.raises(ControlError, match=r"it is kept\. Run the same command again"):
            await releasing
        rerun = "einblick handover --customer werk-a --to hall-b --instances"
        with pytest.raises(ControlError, match=rf"the hold session for 'werk-a' .* kept.*{rerun}"):
            await ask(new, ops.HANDOVER_DROP, ops.HandoverRequest(customer=MOVED))
        assert read_hold(site.config("hall-b").data_path, MOVED) is not None
        assert site.cloud is not None
        await site.cloud.start()
        await site.wait_until(site.drained, 60, "hall-a sending its queued release")
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out)["held"] >= 5
        await _all_forwarded(moved, 7)
        assert read_hold(site.config("hall-b").data_path, MOVED) is None
        await moved.device.close()


async def test_a_release_past_the_commands_wait_does_not_close_the_log_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """The queued release cannot leave before the command stops waiting for the answer: the
    old instance refuses by then, not after its --wait (60 s here), so its take-back runs
    while the command still waits; it decides what only the hold received, and the log is not
    closed."""
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        old = site.config("hall-a").control_socket
        hold = await _held_while_stuck(moved)
        within = 2.0
        release = ops.ReleaseRequest(
            customer=MOVED,
            to_origin=f"hall-b/{MOVED}",
            new_key=hold.key,
            wait_s=60,
            hold=Hold(
                customer=MOVED, client_id=hold.client_id, filters=hold.filters, since=hold.since
            ),
            answer_within_s=within,
        )
        started = time.monotonic()
        releasing = asyncio.get_running_loop().create_task(
            ask(old, ops.HANDOVER_RELEASE, release, timeout=120), name="release-late"
        )
        await _meanwhile(moved)
        refused = r"releases still wait to be sent \(1 for oven-maker\) after [0-2] s"
        with pytest.raises(ControlError, match=refused):
            await releasing
        assert time.monotonic() - started < 30  # the bound, its take-back and a loaded machine
        assert site.cloud is not None
        await site.cloud.start()
        again = await ask(old, ops.HANDOVER_PREPARE, ops.HandoverRequest(customer=MOVED))
        assert not again.closed
        await _all_forwarded(moved, 7)
        assert site.chains("hall-b") == set()
        await moved.device.close()


async def test_a_release_whose_answer_was_lost_after_closing_goes_on_to_the_take(
    tmp_path: Path,
) -> None:
    """The answer did not reach the command (a timeout), but the old instance closed the log:
    asked again, it says so and gives the same record; the hold is kept, not ended behind a
    log that moved, and the move finishes."""
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        released = await close_for_move(site)
        await moved.publish(*range(1, 6))  # only the hold takes these now
        await moved.device.drain()
        move = plan(load_instances(list(site.configs.values())), MOVED, "hall-b")
        release = ops.ReleaseRequest(
            customer=MOVED, to_origin=f"hall-b/{MOVED}", new_key=released.closed.new_key
        )
        lost = ControlError("the gateway did not answer within 150 s")
        again = await after_refusal(move, release, lost)
        assert again.closed == released.closed
        assert read_hold(site.config("hall-b").data_path, MOVED) is not None
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out)["held"] >= 5
        await _all_forwarded(moved, 6)
        await moved.device.close()


async def test_a_release_is_refused_while_the_hold_lacks_a_filter_the_customer_has_now(
    tmp_path: Path,
) -> None:
    """A hold opened before a device with a topic of its own was registered (kept from an
    earlier run) does not hold that topic: the old instance refuses before it gives up any
    filter, and goes on deciding the customer."""
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        old, new = site.config("hall-a").control_socket, site.config("hall-b").control_socket
        prepared = await ask(old, ops.HANDOVER_PREPARE, ops.HandoverRequest(customer=MOVED))
        hold = await ask(
            new, ops.HANDOVER_HOLD, ops.HoldRequest(customer=MOVED, filters=prepared.filters)
        )
        assert prepared.filters and set(prepared.filters) <= set(hold.filters)
        lacking = Hold(
            customer=MOVED, client_id=hold.client_id, filters=hold.filters[1:], since=hold.since
        )
        release = ops.ReleaseRequest(
            customer=MOVED, to_origin=f"hall-b/{MOVED}", new_key=hold.key, hold=lacking
        )
        with pytest.raises(
            ControlError, match=f"hold session does not hold {re.escape(hold.filters[0])}"
        ):
            await ask(old, ops.HANDOVER_RELEASE, release, timeout=60)
        again = await ask(old, ops.HANDOVER_PREPARE, ops.HandoverRequest(customer=MOVED))
        assert not again.closed
        await moved.publish(1)  # hall-a kept the customer's filters: it still decides them
        await _all_forwarded(moved, 2)
        await moved.device.close()


@pytest.mark.parametrize(
    ("client_id", "extra"),
    [
        ("intruder-hold-werk-a", []),  # ends in -hold-werk-a, but no instance builds it so
        (None, ["werk-b/#"]),  # the right session, but holding another customer's filter too
    ],
)
async def test_a_refused_release_drains_no_hold_but_the_named_instances_own(
    tmp_path: Path, client_id: str | None, extra: list[str]
) -> None:
    """The release's hold is the request's word: one under a client id hall-b does not give
    its hold, or with filters that are not exactly the customer's, is not drained by hall-a;
    hall-b's hold is kept for the same command run again."""
    async with moving(tmp_path, forwarded=1) as moved:
        site = moved.site
        old = site.config("hall-a").control_socket
        hold = await _held_while_stuck(moved)
        named = Hold(
            customer=MOVED,
            client_id=client_id or hold.client_id,
            filters=hold.filters + extra,
            since=hold.since,
        )
        release = ops.ReleaseRequest(
            customer=MOVED, to_origin=f"hall-b/{MOVED}", new_key=hold.key, wait_s=1, hold=named
        )
        with pytest.raises(ControlError, match="the release named no hold session"):
            await ask(old, ops.HANDOVER_RELEASE, release, timeout=120)
        assert read_hold(site.config("hall-b").data_path, MOVED) is not None
        await moved.device.close()
