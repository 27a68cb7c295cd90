"""A customer's new log rows, read once for all of that customer's live streams.

Twenty open live views of one customer used to poll the log twenty times every 0.4 s, on the
one thread of that customer's reader, in front of every page the same customer asked for. A
``Feed`` polls instead: whichever stream asks first after ``POLL_S`` (0.5 s) reads the rows that arrived
(through the reader bound to the customer: the scope stays in its SQL), the others wait for that
read and take what it found. Each stream keeps the rows its filters pass (``row_passes``, the
reader's own test of its filters) from the newest ``RING`` rows read.

Bounded: one read takes at most ``READ`` rows, and only a screenful (``SCREEN``) while none of
the customer's streams filters (an unfiltered stream shows the newest screenful, whatever came
before it); more arrived than that since the last read: it jumps to the newest, the rows skipped
are in the log's pages, as a stream's own jump ahead was. The ring keeps ``RING`` rows, and a
feed exists only while one of the customer's streams is open.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from gateway.log.reader import LogReader, row_passes
from gateway.log.results import EntryRow

__all__ = ["POLL_S", "READ", "RING", "SCREEN", "Feed", "Feeds"]

POLL_S = 0.5  # a screenful twice a second: more than anyone reads, and a new row within ~1 s
READ = 2000  # rows per read at most: 4,000 entries/s of one customer, without a gap
RING = 2000  # rows kept for streams that are a read behind
SCREEN = 50  # rows a stream shows at once at most
_TOP = 1 << 62  # "before" no seq: the page is read newest first, from ``after`` up


@dataclass
class Feed:
    """The newest rows of one customer's log, read at most once per ``POLL_S``."""

    reader: LogReader
    latest: int  # the newest seq read so far (rows above it are not read yet)
    rows: deque[EntryRow] = field(default_factory=lambda: deque(maxlen=RING))
    streams: int = 0
    filtered: int = 0  # streams with a filter: they need every row, not the newest screenful
    reads: int = 0  # reads of the log so far (what the tests count)
    poll_s: float = POLL_S
    _read_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def since(
        self, after: int, filters: dict[str, str], limit: int
    ) -> tuple[list[EntryRow], int]:
        """Up to ``limit`` newest rows above ``after`` passing ``filters``, oldest first, and the
        seq a stream has now seen up to (the feed's newest, whether its rows passed or not)."""
        await self._fresh()
        passing = [
            r
            for r in self.rows
            if r.seq > after
            and row_passes(
                r,
                device=filters.get("device"),
                recipient=filters.get("recipient"),
                outcome=filters.get("outcome"),
                text=filters.get("q"),
            )
        ]
        return passing[-limit:], max(after, self.latest)

    async def _fresh(self) -> None:
        if time.monotonic() - self._read_at < self.poll_s:
            return
        async with self._lock:  # the streams that came meanwhile wait for this one read
            if time.monotonic() - self._read_at < self.poll_s:
                return
            limit = READ if self.filtered else SCREEN
            new = await self.reader.page(after=self.latest, before=_TOP, limit=limit)
            self._read_at = time.monotonic()
            self.reads += 1
            if new:  # newest first: the newest READ above ``latest``
                self.rows.extend(reversed(new))
                self.latest = new[0].seq


@dataclass
class Feeds:
    """One feed per customer with a live stream open; gone with the customer's last stream."""

    feeds: dict[str, Feed] = field(default_factory=dict)

    def join(self, customer: str, reader: LogReader, after: int, filtered: bool = False) -> Feed:
        """The customer's feed; a new one reads from ``after`` (the joining stream's own start:
        the newest seq of the page it belongs to), so rows written since that page reach it."""
        feed = self.feeds.get(customer)
        if feed is None:
            feed = self.feeds[customer] = Feed(reader, after)
        feed.streams += 1
        feed.filtered += filtered
        return feed

    def leave(self, customer: str, filtered: bool = False) -> None:
        feed = self.feeds.get(customer)
        if feed is not None:
            feed.streams -= 1
            feed.filtered -= filtered
            if feed.streams <= 0:
                del self.feeds[customer]
