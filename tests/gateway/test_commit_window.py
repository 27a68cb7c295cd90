"""The commit window: messages arriving while the first of a batch waits share its transaction
(one BEGIN, one fsync, one hand-over), and are acknowledged only after that commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.messages.pipeline import COMMIT_WINDOW_S
from tests.gateway.test_pipeline import TOPIC, _bench, reading


async def test_messages_arriving_within_the_window_share_one_transaction(tmp_path: Path) -> None:
    assert 0 < COMMIT_WINDOW_S <= 0.005  # inside the latency budget (p99 added < 5 ms)
    bench = await _bench(tmp_path, queue_size=100)
    first = bench.link.deliver(TOPIC, reading(170.0))
    rest = [bench.link.deliver(TOPIC, reading(171.0 + i)) for i in range(4)]
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        bench.pipeline.receive(first)
        # One turn of the loop: the writer takes the first message and starts its batch. Without
        # the window it would begin committing it alone right there.
        await asyncio.sleep(0)
        assert bench.link.acked == []
        for message in rest:
            bench.pipeline.receive(message)
        await bench.wait_handed(5)
        writer.cancel()
    assert bench.pipeline.stats.batches == 1
    assert bench.pipeline.stats.committed == 5
    assert bench.link.acked == [m.mid for m in (first, *rest)]
    await bench.store.close()
