"""``python -m tests.portal.service_time [ENTRIES]``: each portal page's time alone.

The portal in this process (``tests.portal.box``: plain HTTP on loopback, a real log written by
the log's writer), one logged-in session, a log of ``ENTRIES`` entries (two of every three the
session's customer's, one in 1,000 withheld), and each page fetched 30 times in a row: the
work a page costs, without the gateway's load or other sessions around it. The benchmark under
load is ``python -m gateway.bench.portal``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.log.conftest import make_draft
from tests.portal.box import MINE, THEIRS, portal_box

REQUESTS = 30


async def main(entries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with portal_box(Path(tmp)) as box:
            for start in range(10, entries, 5000):
                box.log.write(
                    [
                        make_draft(
                            i,
                            customer=MINE if i % 3 else THEIRS,
                            outcome="withheld" if i % 1000 == 7 else "shared",
                        )
                        for i in range(start, min(entries, start + 5000))
                    ]
                )
            client = await box.session()
            print(f"{entries:,} entries, {REQUESTS} requests per page, one after the other")
            pages = ("/log", "/log?outcome=withheld", "/log?device=oven-1", "/download", "/report")
            newest_mine = next(i for i in range(entries - 1, 0, -1) if i % 3) + 1  # its seq
            for page in (*pages, f"/entry/{newest_mine}"):
                times = []
                for _ in range(REQUESTS):
                    started = time.perf_counter()
                    async with client.get(box.url + page) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{page}: {response.status}")
                    times.append((time.perf_counter() - started) * 1000)
                _print(page, times)
            # The report of a customer whose log grows: a new signed entry before each request,
            # so each request builds the report again (the portal's report cache cannot serve it).
            times = []
            for n in range(REQUESTS):
                box.log.write([make_draft(entries + n, customer=MINE)])
                started = time.perf_counter()
                async with client.get(box.url + "/report") as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"/report: {response.status}")
                times.append((time.perf_counter() - started) * 1000)
            _print("/report (log grows)", times)


def _print(page: str, times: list[float]) -> None:
    times.sort()
    print(
        f"  {page:<24} p50 {statistics.median(times):6.1f} ms  "
        f"p95 {times[int(0.95 * REQUESTS) - 1]:6.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
