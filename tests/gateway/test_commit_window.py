"""The commit window: while messages arrive close together, those arriving while the first of a
batch waits share its transaction (one BEGIN, one fsync, one hand-over), and are acknowledged
only after that commit; a message after a quiet spell is committed at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.messages.pipeline import COMMIT_WINDOW_S
from tests.gateway.test_pipeline import TOPIC, _bench, reading

# Wide in these tests, so that a busy test machine pausing the loop for a few ms cannot close
# the window before the test has delivered the rest; the product's window is COMMIT_WINDOW_S.
WINDOW_S = 0.5


async def test_messages_arriving_within_the_window_share_one_transaction(tmp_path: Path) -> None:
    assert 0 < COMMIT_WINDOW_S <= 0.005  # inside the latency budget (p99 added < 5 ms)
    bench = await _bench(tmp_path, queue_size=100, commit_window_s=WINDOW_S)
    # Two messages a few µs apart: the rate at which the window pays.
    early = [bench.link.deliver(TOPIC, reading(170.0 + i)) for i in range(2)]
    rest = [bench.link.deliver(TOPIC, reading(172.0 + i)) for i in range(4)]
    for message in early:
        bench.pipeline.receive(message)
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        # One turn of the loop: the writer takes the first messages and starts its batch.
        # Without the window it would begin committing them right there.
        await asyncio.sleep(0)
        assert bench.link.acked == []
        for message in rest:
            bench.pipeline.receive(message)
        await bench.wait_handed(6)
        writer.cancel()
    assert bench.pipeline.stats.batches == 1
    assert bench.pipeline.stats.committed == 6
    assert bench.link.acked == [m.mid for m in (*early, *rest)]
    await bench.store.close()


async def test_a_message_after_a_quiet_spell_is_committed_without_waiting(tmp_path: Path) -> None:
    bench = await _bench(tmp_path, queue_size=100, commit_window_s=WINDOW_S)
    first = bench.link.deliver(TOPIC, reading(170.0))
    rest = [bench.link.deliver(TOPIC, reading(171.0 + i)) for i in range(4)]
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(bench.pipeline.run(), name="pipeline-writer")
        bench.pipeline.receive(first)  # the first message ever: nothing arrived just before it
        await asyncio.sleep(0)  # one turn: the writer takes it and starts committing at once
        for message in rest:
            bench.pipeline.receive(message)
        await bench.wait_handed(5)
        writer.cancel()
    assert bench.pipeline.stats.batches == 2  # it alone, then the rest
    assert bench.link.acked == [m.mid for m in (first, *rest)]
    await bench.store.close()
