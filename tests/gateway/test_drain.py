"""Draining a hold (gateway/operations/drain.py), against running instances behind a real
Mosquitto: what the hold kept while nobody decided the customer is handed to the pipeline of the
instance that took the log over, and forwarded, and the hold is ended."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.commands.handover import plan
from gateway.log.keys import Signer
from gateway.log.transfer import ClosedTree, adopt_tree, open_tree_record, read_tree
from gateway.operations.child import stop_gateway
from gateway.operations.cluster import load_instances
from gateway.operations.holds import read_hold
from tests.gateway.test_handover import MOVED, close_for_move, handover, moving
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
        record = released.closed
        closed = ClosedTree(
            MOVED,
            record.old_origin,
            record.new_origin,
            record.size,
            bytes.fromhex(record.root),
            bytes.fromhex(record.old_key),
            bytes.fromhex(record.new_key),
            bytes.fromhex(record.sig_old),
        )
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
