"""Overload without loss: a flooding device is limited, a full outbox pauses intake."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from tests.gateway.harness import running_gateway
from tests.gateway.test_durability import POLICY

DEVICES = [("werk-nord", "press-1", "Presse 1"), ("werk-nord", "press-2", "Presse 2")]


async def test_a_device_flooding_at_ten_times_its_rate_is_limited_and_others_are_unaffected(
    tmp_path: Path,
) -> None:
    limits = {
        "checkpoint_interval_s: 0.2": "checkpoint_interval_s: 0.2\n  device_max_rate: 20\n  device_burst: 20"
    }
    async with running_gateway(tmp_path, {"werk.yaml": POLICY}, DEVICES, config_edits=limits) as h:
        flooder = await h.device("werk-nord", "press-1")
        neighbour = await h.device("werk-nord", "press-2")
        started = time.monotonic()

        async def flood() -> None:
            for seq in range(600):  # as fast as QoS 1 allows: well over 10x 20/s
                await flooder.publish(
                    "factory/press-1/telemetry", orjson.dumps({"seq": seq, "force_kn": 1}), 1
                )

        async def behave() -> None:
            for seq in range(20):
                await neighbour.publish(
                    "factory/press-2/telemetry", orjson.dumps({"seq": seq, "force_kn": 2}), 1
                )
                await asyncio.sleep(0.05)

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(flood(), name="flooder")
            tasks.create_task(behave(), name="neighbour")
        elapsed = time.monotonic() - started
        await h.wait_committed(620, timeout=20)
        async with asyncio.timeout(10):
            while sum(1 for m in h.cloud.received if m.topic == "presses/press-2") < 20:
                await asyncio.sleep(0.05)
        # The fence: one more message from the calm device, sent after all 620 were committed.
        # The recipient gets its outbox in order, so once the fence is there, every flooded
        # message that was released has arrived too.
        fence = 20
        await neighbour.publish(
            "factory/press-2/telemetry", orjson.dumps({"seq": fence, "force_kn": 2}), 1
        )
        async with asyncio.timeout(10):
            while not any(
                m.topic == "presses/press-2" and orjson.loads(m.payload)["seq"] == fence
                for m in h.cloud.received
            ):
                await asyncio.sleep(0.05)
        flooded = [
            orjson.loads(m.payload)["seq"] for m in h.cloud.received if m.topic == "presses/press-1"
        ]
        neighbours = [
            orjson.loads(m.payload)["seq"]
            for m in h.cloud.received
            if m.topic == "presses/press-2" and orjson.loads(m.payload)["seq"] != fence
        ]
        assert neighbours == list(range(20)), "the well-behaved device lost messages to the flood"
        assert 20 <= len(flooded) <= 20 + 20 * elapsed + 5, (len(flooded), elapsed)
        assert elapsed < 30, "QoS 1 flood was slower than expected; the test did not flood"
        # Every flooded message is accounted for: forwarded or recorded as withheld.
        assert h.gateway.pipeline is not None
        stats = h.gateway.pipeline.stats
        assert stats.committed == 620 + 1  # the flood, the calm device and the fence
        await flooder.close()
        await neighbour.close()


async def test_a_full_outbox_pauses_intake_and_nothing_is_dropped(tmp_path: Path) -> None:
    # The global limit, not a recipient's quota: the quota is set above it on purpose.
    edits = {"max_rows: 10000000": "max_rows: 50\n  recipient_max_rows: 1000"}
    async with running_gateway(tmp_path, {"werk.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        await h.cloud.broker.stop()  # nobody upstream: the outbox fills
        press = await h.device("werk-nord", "press-1")
        for seq in range(200):
            await press.publish(
                "factory/press-1/telemetry", orjson.dumps({"seq": seq, "force_kn": 1}), 1
            )
        async with asyncio.timeout(10):
            while not h.gateway.status().to_json()["pipeline"]["outbox_full"]:
                await asyncio.sleep(0.05)
            while h.gateway.device_state.connected:
                await asyncio.sleep(0.05)
        # The link's state and status's paused_because give the one reason.
        why = h.gateway.status().to_json()["pipeline"]["paused_because"]
        assert why is not None and why.startswith("the outbox is full"), why
        assert h.gateway.device_state.error == f"paused: {why}"
        assert h.gateway.pipeline is not None
        held = h.gateway.pipeline.stats.committed
        assert 50 <= held < 200, held  # the rest waits in the broker, unacknowledged
        await h.cloud.broker.start()
        spy_seen: list[int] = []
        await h.cloud.listen()
        async with asyncio.timeout(30):
            while len({orjson.loads(m.payload)["seq"] for m in h.cloud.received}) < 200:
                await asyncio.sleep(0.05)
        spy_seen = sorted({orjson.loads(m.payload)["seq"] for m in h.cloud.received})
        assert spy_seen == list(range(200))
        # Sent rows leave the outbox in batches once acknowledged; then intake resumes.
        async with asyncio.timeout(10):
            while (
                h.gateway.status().to_json()["pipeline"]["outbox_full"]
                or not h.gateway.device_state.connected
            ):
                await asyncio.sleep(0.05)
        # Each step back leaves the messages still queued here to the broker (decided once, on
        # the next session). Deciding them as well refilled the outbox with duplicates on every
        # step back, and under load the outbox never drained: thousands of rows, no resume.
        assert h.gateway.pipeline.stats.committed < 2 * 200, h.gateway.pipeline.stats
        await press.close()
