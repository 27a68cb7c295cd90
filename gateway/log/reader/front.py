"""``LogReader``: the one reader for asyncio, each call on the reader's own thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from gateway.log.reader.sync import Reader
from gateway.log.results import CheckpointInfo, EntryDetail, EntryRow, Stats

__all__ = ["LogReader"]

T = TypeVar("T")


class LogReader:
    """A ``Reader`` for asyncio: each call runs on the reader's own thread (one connection,
    one thread, so calls are serialised and never block the event loop)."""

    def __init__(self, reader: Reader, pool: ThreadPoolExecutor) -> None:
        self.sync = reader
        self._pool = pool

    @property
    def origin(self) -> str:
        return self.sync.origin

    @classmethod
    async def open(cls, path: str | Path, *, customer: str | None = None) -> LogReader:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="einblick-log-reader")
        loop = asyncio.get_running_loop()
        try:
            reader = await loop.run_in_executor(pool, partial(Reader.open, path, customer=customer))
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(reader, pool)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the reader's thread (``fn`` may use ``self.sync``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    async def close(self) -> None:
        await self.run(self.sync.close)
        self._pool.shutdown(wait=True)

    async def latest_seq(self) -> int:
        return await self.run(self.sync.latest_seq)

    async def page(
        self,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 200,
        **filters: str | None,
    ) -> list[EntryRow]:
        """Up to ``limit`` entries: newest first below ``before``, or oldest first above
        ``after``; ``filters``: customer, device, recipient, outcome, text."""

        def run() -> list[EntryRow]:
            flt = self.sync.filter_for(**filters)
            return self.sync.page(flt, before=before, after=after, limit=limit)

        return await self.run(run)

    async def count(self, **filters: str | None) -> int:
        return await self.run(lambda: self.sync.count(self.sync.filter_for(**filters)))

    async def get(self, seq: int) -> EntryDetail:
        return await self.run(self.sync.detail, seq)

    async def checkpoints(
        self, *, customer: str | None = None, covering: int | None = None, limit: int = 100
    ) -> list[CheckpointInfo]:
        return await self.run(
            self.sync.checkpoint_infos, customer=customer, covering=covering, limit=limit
        )

    async def stats(self, since: datetime, *, customer: str | None = None) -> Stats:
        if customer is None:
            return await self.run(self.sync.stats, since)

        def run() -> Stats:  # a one-off reader bound to that customer, on this thread
            bound = Reader.open(self.sync.path, customer=customer)
            try:
                return bound.stats(since) if self.sync.customer in (None, customer) else Stats()
            finally:
                bound.close()

        return await self.run(run)
