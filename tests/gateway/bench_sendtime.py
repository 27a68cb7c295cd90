"""Cost of the send-time check (gateway/messages/sendtime.py): the O(1) path for unchanged rows,
and deciding a row again after a policy change (entry, row update, commit included).

    .venv/bin/python -m tests.gateway.bench_sendtime
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages import outbox
from gateway.messages.intake import Arrival
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.pipeline import Pipeline
from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import RecipientQueues
from gateway.messages.sendtime import SendParts, SendTime
from gateway.messages.sendtime_rules import stale
from gateway.messages.store import Store
from policies.engine import Engine
from tests.gateway.clocks import SetClock
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_sendtime import NOON, POLICY, RECIPIENTS, TOPIC
from tests.policies.conftest import compile_text

N = 5000


def check_stale(engine: Engine, row: OutboxRow, now: datetime) -> bool:
    """The send-time check's O(1) look at one row (sendtime_rules.stale), its lookups included."""
    policy = engine.policy(row.customer)
    grant = policy.grant(row.grant) if policy is not None else None
    return stale(engine, policy, grant, row, now, hours=now)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    keyring = Keyring()
    engine = Engine([compile_text(POLICY, RECIPIENTS)], keyring)
    store = Store(tmp / "e.db")
    await store.open()
    writer = await store.read(lambda c: LogWriter(c, Signer.generate(), "m"))
    box = Outbox(
        store,
        RecipientQueues(
            dict.fromkeys(RECIPIENTS, "withhold"),
            max_rows_total=10**6,
            max_rows=None,
            max_bytes=None,
            disk_share=0.5,
            disk=tmp,
        ),
        max_rows=10**6,
    )
    now = [NOON]
    pipe = Pipeline(
        engine=lambda: engine,
        store=store,
        log_writer=lambda: writer,
        keyring=keyring,
        topic_prefix={},
        queue_size=10**5,
        batch_max=1000,
        max_payload_bytes=65536,
        outbox=box,
        clock=SetClock(lambda: now[0]),
    )
    check = SendTime(
        SendParts(
            engine=lambda: engine,
            keyring=keyring,
            store=store,
            log_writer=lambda: writer,
            outbox=box,
            clock=SetClock(lambda: now[0]),
            topic_prefix={},
        )
    )
    link = FakeLink()
    for start in range(0, N, 1000):
        await pipe.process(
            [
                Arrival(
                    link.deliver(
                        TOPIC, orjson.dumps({"temperature": 180.0 + i / 10, "door_open": True})
                    )
                )
                for i in range(start, start + 1000)
            ]
        )
    rows = await store.read(
        functools.partial(outbox.pending, recipient="oven-maker", after=0, limit=N)
    )
    assert len(rows) == N
    t = time.perf_counter()
    for _ in range(5):
        for r in rows:
            check_stale(engine, r, NOON)
    cheap = (time.perf_counter() - t) / (5 * N)
    t = time.perf_counter()
    settled = await check.settle(rows)
    assert settled.leave == rows
    cheap_settle = (time.perf_counter() - t) / N
    engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    t = time.perf_counter()
    for start in range(0, N, 1000):
        await check.settle(rows[start : start + 1000])
    again = (time.perf_counter() - t) / N
    assert check.redecided == N
    print(f"rows: {N}")
    print(f"unchanged row, stale() check: {cheap * 1e6:.2f} µs/row")
    print(
        f"unchanged row, settle() batch of {N}: {cheap_settle * 1e6:.2f} µs/row (no entry written)"
    )
    print(
        f"policy changed, settle() in batches of 1000 (decide again + signed entry + row update, committed): {again * 1e6:.1f} µs/row"
    )
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
