"""The live log as Server-Sent Events: a new entry of the session's customer arrives as a row
within 2 s and another customer's never does; the stream ends when the session is revoked;
streams are capped."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson

from gateway.operations.portal.live import BURST
from tests.portal.box import MINE, THEIRS, portal_box


@contextlib.asynccontextmanager
async def stream(
    client: aiohttp.ClientSession, url: str
) -> AsyncIterator[asyncio.Queue[tuple[str, str]]]:
    """The stream at ``url`` read in the background: (event, data) as it delivers them."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    async with client.get(url) as response:
        assert response.status == 200, response.status
        assert response.headers["Content-Type"] == "text/event-stream"

        async def read() -> None:
            name = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    await queue.put((name, line[6:]))

        async with asyncio.TaskGroup() as group:
            reader = group.create_task(read(), name="sse-reader")
            try:
                yield queue
            finally:
                reader.cancel()


async def test_a_new_entry_arrives_within_2_s_and_another_customers_never(
    tmp_path: Path,
) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        async with stream(client, box.url + "/live?after=10") as queue:
            box.write(10, 1, customer=THEIRS)  # seq 11: theirs, never on this stream
            started = time.monotonic()
            box.write(11, 1, customer=MINE)  # seq 12: mine
            async with asyncio.timeout(2):
                name, data = await queue.get()
            elapsed = time.monotonic() - started
            event = orjson.loads(data)
            assert name == "entry" and event["seq"] == 12, (name, data)
            assert 'data-seq="12"' in event["html"] and elapsed < 2.0


async def test_the_stream_ends_when_the_session_is_revoked(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        async with stream(client, box.url + "/live?after=100") as queue:
            box.store().revoke(MINE)
            async with asyncio.timeout(10):  # re-checked every 5 s
                name, _ = await queue.get()
            assert name == "ended"


async def test_live_streams_are_capped(tmp_path: Path) -> None:
    async with portal_box(tmp_path, "  max_live_sessions: 1\n") as box:
        first, second = await box.session(), await box.session()
        async with stream(first, box.url + "/live?after=10") as queue:
            box.write(20, 1)  # a row on the first stream: it is open and counted
            async with asyncio.timeout(2):
                assert (await queue.get())[0] == "entry"
            async with second.get(box.url + "/live?after=100") as refused:
                assert refused.status == 503


async def test_a_stream_behind_by_more_than_a_screenful_jumps_to_the_newest(
    tmp_path: Path,
) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        box.write(10, BURST + 10, customer=MINE)  # seq 11 .. 70, all mine, before the stream
        async with stream(client, box.url + "/live?after=10") as queue:
            seqs = []
            async with asyncio.timeout(5):
                while len(seqs) < BURST:
                    name, data = await queue.get()
                    assert name == "entry"
                    seqs.append(orjson.loads(data)["seq"])
        newest = 10 + BURST + 10
        assert seqs == list(range(newest - BURST + 1, newest + 1))  # the oldest ten skipped


async def test_a_filtered_page_hands_over_at_its_own_newest_row(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        # None of MINE's first entries is withheld: the filtered page is empty, and its stream
        # takes over from the start, so whatever passes after the page reaches it.
        async with client.get(box.url + "/log?outcome=withheld") as response:
            page = await response.text()
        assert 'data-latest="0"' in page and 'data-query="outcome=withheld"' in page
        async with stream(client, box.url + "/live?outcome=withheld&after=0") as queue:
            box.write(20, 1)  # seq 11: MINE, shared: not on this stream
            box.write(23, 1)  # seq 12: MINE, withheld
            async with asyncio.timeout(5):
                name, data = await queue.get()
            assert name == "entry" and orjson.loads(data)["seq"] == 12, data
        async with client.get(box.url + "/log") as response:
            page = await response.text()
        assert 'data-latest="12"' in page  # the newest page's own newest row
