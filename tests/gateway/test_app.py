"""The composition root (gateway/app.py) running for real: every long-lived piece of work is a
named task of the gateway's TaskGroup (no anonymous task to lose track of), and stopping it
stops them all, signs a last checkpoint over what arrived since the last one, and stops the
managed broker."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson

from gateway.log.verify import verify_db
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY

DEVICES = [("baeckerei-schmidt", "oven-1", "Backofen 1")]
TASKS = {
    "aggregation-windows",
    "broker-supervisor",
    "checkpoints",
    "device-link",
    "device-subscriptions",
    "disk-watch",
    "erasure-acks",
    "pipeline-writer",
    "policy-watcher",
    "retained-sweep",
    "retention",
    "forwarder-oven-maker",
}


async def test_named_tasks_and_an_orderly_stop(tmp_path: Path) -> None:
    # Checkpoints only every minute: the last one must come from stopping.
    hourly = {"checkpoint_interval_s: 0.2": "checkpoint_interval_s: 60"}
    async with running_gateway(
        tmp_path, {"bakery.yaml": BAKERY}, DEVICES, config_edits=hourly
    ) as h:
        me = asyncio.current_task()
        running = {t for t in asyncio.all_tasks() if t is not me}
        names = {t.get_name() for t in running}
        assert names >= TASKS, sorted(TASKS - names)
        assert not [n for n in names if re.fullmatch(r"Task-\d+", n)], sorted(names)
        oven = await h.device("baeckerei-schmidt", "oven-1")
        try:
            body = orjson.dumps({"temperature": 231.37, "door_open": False})
            await oven.publish("bakery/oven-1/telemetry", body, 1)
            await h.wait_committed(1)
        finally:
            await oven.close()
        gateway = h.gateway
        db = gateway.config.database_path
        assert verify_db(db).unsigned > 0  # not signed yet: the next checkpoint is a minute away
    assert all(t.done() for t in running if t.get_name() in TASKS)
    broker = gateway.devices.broker
    assert broker is not None and not broker.running
    report = verify_db(db)
    assert report.ok and report.unsigned == 0, report.summary()
