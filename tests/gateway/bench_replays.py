"""Cost of recognising a retained message on a new session (gateway/messages/replays.py): one
device with N entries in the log; the lookup for its newest message, for one beyond the walk
(decided again), and for bytes the log does not hold (the walk to its limit).

    .venv/bin/python -m tests.gateway.bench_replays [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

from gateway.messages.intake import Arrival
from tests.gateway import test_sendtime
from tests.gateway.fake_link import FakeLink

POLICY = test_sendtime.POLICY.replace('    hours: ["06:00-22:00"]\n', "")


def reading(i: int) -> bytes:
    return orjson.dumps({"temperature": i, "door_open": True})


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with test_sendtime.open_bench(Path(directory), POLICY, test_sendtime.NOON) as b:
            link = FakeLink()
            for start in range(0, n, 500):
                end = min(n, start + 500)
                batch = [Arrival(link.deliver(test_sendtime.TOPIC, reading(i))) for i in range(start, end)]  # fmt: skip
                await b.pipeline.process(batch)
            new = FakeLink()  # a new session: session_present is False
            print(f"one device, {n} messages decided")
            for name, payload in (
                ("its newest message (found)", reading(n - 1)),
                ("its oldest message (beyond the walk: decided again)", reading(0)),
                ("bytes the log does not hold (walked to the limit)", b"{}"),
            ):
                t = time.perf_counter()
                found = await b.replays.decided([new.deliver(test_sendtime.TOPIC, payload, retain=True)])  # fmt: skip
                took = (time.perf_counter() - t) * 1000
                print(f"  {name}: {took:.1f} ms, recognised: {bool(found)}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 150_000))
