"""The durable outbox: what a recipient is still owed, committed with its log entry.

A row is written in the same transaction as the log entry that explains it, and deleted once the
recipient's broker has acknowledged it (PUBACK). A crash between the PUBACK and the delete sends
the row again: at-least-once, with duplicates bounded by the forwarder's in-flight window.
Payloads are personal data: forgetting a device deletes its queued rows (``erase``).

``Outbox`` is the one owner of the outbox at run time: its table (rows in, rows pending, rows
out), its depth per recipient and customer (the ``RecipientQueues`` it holds), and its one room
signal (``full`` / ``has_room``). The pipeline inserts through it inside the transaction that
appends the rows' entries (no record, no forward) and hands committed rows over through it; each
forwarder reads, deletes and reports rows gone through it. Nobody else edits the depth.

The ``outbox`` table is created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.messages.handed import HandedMarks
from gateway.messages.quota import RecipientQueues
from gateway.messages.store import Store

__all__ = [
    "SOURCE_FACTOR",
    "SOURCE_FLOOR",
    "Outbox",
    "OutboxRow",
    "by_ids",
    "delete",
    "depth",
    "erase",
    "insert",
    "keeps_source",
    "pending",
    "queued_of",
    "replace",
    "sizes",
]

# A row keeps the device's message it was decided from, to decide it again at send time
# (gateway/messages/sendtime.py), only while that costs about what the release itself costs:
# up to SOURCE_FLOOR bytes, or SOURCE_FACTOR times the released payload. The queues' quotas count
# released bytes, so this bounds what a device can make the outbox hold for itself: a hostile
# device sending 256 KiB of distinct keys to release one number would otherwise park 256 KiB
# per queued row. A row without its source leaves only while its grant is unchanged and holds;
# otherwise it is withheld at send time (default deny), and the log says why.
SOURCE_FLOOR = 4 * 1024
SOURCE_FACTOR = 4


def keeps_source(source: bytes, released: bytes) -> bool:
    """Whether a row releasing ``released`` keeps the device message ``source`` it came from."""
    return len(source) <= max(SOURCE_FLOOR, SOURCE_FACTOR * len(released))


# Not frozen (one is built per release on the hot path, and a frozen __init__ cost twice a plain
# one); rows are never changed in place (``dataclasses.replace`` makes new ones) and stay
# hashable by value as before.
@dataclass(slots=True, unsafe_hash=True)
class OutboxRow:
    id: int
    entry_seq: int
    recipient: str
    customer: str
    device: str
    grant: str
    topic: str
    payload: bytes
    created: int  # microseconds since the epoch, UTC (the decision's time)
    # What the row was decided from and under which policy version, so the forwarder can decide
    # it again when the policy changed while it waited (gateway/messages/sendtime.py). None for
    # rows no device message produced (aggregation windows, erasure notices) and for rows an
    # earlier release queued.
    version: str | None = None
    source_topic: str | None = None
    source: bytes | None = None
    retain: bool = False
    release_at: int | None = None  # µs since the epoch: held until then (messages/release.py)
    # time.monotonic() when the row entered the outbox in this process (its commit follows at
    # once); 0.0 for rows read back from the database. Not stored: only for latency figures.
    queued: float = 0.0


Spec = tuple[int, str, str, str, str, str, bytes, int]
# With what it was decided from (version, device topic, device payload, retain) and when it may
# leave (µs since the epoch, or None: at once).
SourcedSpec = tuple[
    int, str, str, str, str, str, bytes, int, str | None, str | None, bytes | None, bool, int | None
]


def insert(conn: sqlite3.Connection, rows: Sequence[Spec | SourcedSpec]) -> list[OutboxRow]:
    """Insert (entry_seq, recipient, customer, device, grant, topic, payload, created µs) tuples,
    optionally followed by (policy version, device topic, device payload, retain, release at)."""
    if not rows:
        return []
    full = [(*r, None, None, None, False, None) if len(r) == 8 else r for r in rows]
    if len(full) == 1:
        # One row (a batch of one message at a steady rate): SQLite picks the id AUTOINCREMENT
        # promises, as below, in the one statement; reading the sequence first cost ~3 µs.
        cursor = conn.execute(_INSERT_ONE, full[0])
        assert cursor.lastrowid is not None
        return [OutboxRow(cursor.lastrowid, *full[0], queued=time.monotonic())]
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    first = (row[0] if row else 0) + 1
    # Explicit ids: one executemany instead of a round trip per row for lastrowid.
    conn.executemany(
        "INSERT INTO outbox (id, entry_seq, recipient, customer, device, grant_id, topic, payload,"
        " created, version, source_topic, source, retain, release_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(first + i, *r) for i, r in enumerate(full)],
    )
    queued = time.monotonic()
    return [OutboxRow(first + i, *r, queued=queued) for i, r in enumerate(full)]


_INSERT_ONE = (
    "INSERT INTO outbox (entry_seq, recipient, customer, device, grant_id, topic, payload,"
    " created, version, source_topic, source, retain, release_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def pending(conn: sqlite3.Connection, recipient: str, *, after: int, limit: int) -> list[OutboxRow]:
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?",
        (recipient, after, limit),
    )
    return _rows(cursor)


def present(conn: sqlite3.Connection) -> bool:
    """The database has an outbox (a log written by 0.1.0, opened read-only, may not)."""
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
        ).fetchone()
        is not None
    )


def queued(conn: sqlite3.Connection, row_id: int) -> bool:
    """The row is still waiting to be sent (deleted once its recipient acknowledged it)."""
    return conn.execute("SELECT 1 FROM outbox WHERE id = ?", (row_id,)).fetchone() is not None


def by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> list[OutboxRow]:
    """The rows with these ids that are still queued, in id order (held rows falling due)."""
    found: list[OutboxRow] = []
    for start in range(0, len(ids), 500):  # below SQLite's bound-parameter limit
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        found += _rows(conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id IN ({marks})", chunk))
    return sorted(found, key=lambda r: r.id)


_COLUMNS = (
    "id, entry_seq, recipient, customer, device, grant_id, topic, payload, created,"
    " version, source_topic, source, retain, release_at"
)


def _rows(cursor: sqlite3.Cursor) -> list[OutboxRow]:
    return [
        OutboxRow(
            i, seq, rcp, cst, dev, grant, topic, body, at, ver, src_topic, src, bool(ret), rel
        )
        for i, seq, rcp, cst, dev, grant, topic, body, at, ver, src_topic, src, ret, rel in cursor
    ]


def replace(conn: sqlite3.Connection, row: OutboxRow) -> bool:
    """A row decided again at send time: what now leaves, and the entry that explains it;
    False when the row is no longer there (an erasure took it meanwhile)."""
    cursor = conn.execute(
        "UPDATE outbox SET entry_seq = ?, topic = ?, payload = ?, version = ? WHERE id = ?",
        (row.entry_seq, row.topic, row.payload, row.version, row.id),
    )
    return cursor.rowcount > 0


def delete(conn: sqlite3.Connection, ids: Iterable[int]) -> set[int]:
    """Delete rows by id; the ids of those that were there (an erasure may have taken a row an
    acknowledgement was still on its way for: it left the queue counts with the erasure)."""
    wanted = list(ids)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):  # well under SQLite's limit of bound values
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING id"
        found.update(int(row_id) for (row_id,) in conn.execute(sql, chunk).fetchall())
    return found


def depth(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(
        conn.execute("SELECT recipient, COUNT(*) FROM outbox GROUP BY recipient").fetchall()
    )


def highest_id(conn: sqlite3.Connection) -> int:
    """The highest row id in the table, 0 when it is empty."""
    (found,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()
    return int(found)


def sizes(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (recipient, customer): rows waiting and their payload bytes (what the queue quotas
    count)."""
    rows = conn.execute(
        "SELECT recipient, customer, COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        " GROUP BY recipient, customer"
    ).fetchall()
    return {(str(r), str(c)): (int(n), int(b)) for r, c, n, b in rows}


def erase(
    conn: sqlite3.Connection,
    customer: str,
    device: str | None = None,
    *,
    keep_grant: str | None = None,
) -> list[tuple[str, int, int]]:
    """Delete queued payloads of a customer (or one device), except rows queued under
    ``keep_grant`` (an erasure's notices: not personal content, they must still reach their
    recipients); per recipient, the rows and payload bytes deleted."""
    sql = "FROM outbox WHERE customer = ?"
    params: list[str] = [customer]
    if keep_grant is not None:
        sql += " AND grant_id <> ?"
        params.append(keep_grant)
    if device is not None:
        sql += " AND device = ?"
        params.append(device)
    sized = conn.execute(
        f"SELECT recipient, count(*), coalesce(sum(length(payload)), 0) {sql} GROUP BY recipient",
        params,
    ).fetchall()
    conn.execute(f"DELETE {sql}", params)
    return [(str(r), int(n), int(b)) for r, n, b in sized]


def queued_of(
    conn: sqlite3.Connection, customer: str, *, besides: str | None = None
) -> dict[str, int]:
    """The rows queued for ``customer``, per recipient; with ``besides``, not those queued
    under that grant (an erasure's notices: not personal content)."""
    sql = "SELECT recipient, count(*) FROM outbox WHERE customer = ?"
    params = [customer]
    if besides is not None:
        sql += " AND grant_id <> ?"
        params.append(besides)
    return {str(r): int(n) for r, n in conn.execute(sql + " GROUP BY recipient", params)}


# Rows leave room again below this fraction of ``outbox.max_rows``: no flapping at the mark.
ROOM_AGAIN = 0.9


@dataclass(slots=True)
class _Reader:
    """What the outbox tells the one forwarder of a recipient."""

    offer: Callable[[Sequence[OutboxRow]], None]  # committed rows, in id order
    reread: Callable[[], None] | None  # rows were deleted behind its back: read the table again


class Outbox:
    """The outbox table, its depth and its room signal, with one owner (see the module text)."""

    def __init__(
        self, store: Store, queues: RecipientQueues, *, max_rows: int, handed: Path | None = None
    ) -> None:
        self.store = store
        self.queues = queues
        self.max_rows = max_rows
        self.full = asyncio.Event()
        self.has_room = asyncio.Event()
        self.has_room.set()
        self._full_waiters: list[asyncio.Future[None]] = []
        self._readers: dict[str, _Reader] = {}
        # The highest row id committed so far (ids grow with commits): a forwarder made now
        # knows every row up to it may have been sent by one before it (sendtime_text MAYBE_SENT).
        self.last_id = 0
        # Which rows an earlier run may have handed to each recipient (handed.py), from ``load``
        # on; ``handed`` None: none kept, every row there at a start counts.
        self._handed_path = handed
        self.handed = HandedMarks(None, 0)
        # An erasure (or a moved customer's scrub) deletes rows a forwarder may hold in memory,
        # checked and about to leave. Each counts here twice, as it starts and once it has
        # committed; a forwarder publishes what it read only while the count is what it was
        # when it read it, and reads nothing while one runs (``quiet``): no row leaves after
        # the erasure that deleted it.
        self.erasures = 0
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._erasing = 0

    @classmethod
    def from_config(cls, store: Store, config: Config) -> Outbox:
        """The outbox as ``einblick.yaml`` sets it, its record of what was handed over in the
        data directory."""
        queues = RecipientQueues.from_config(config)
        return cls(
            store, queues, max_rows=config.outbox.max_rows, handed=config.data_path / "handed.json"
        )

    # -- who reads a recipient's rows -----------------------------------------------------------

    def attach(
        self,
        recipient: str,
        offer: Callable[[Sequence[OutboxRow]], None],
        reread: Callable[[], None] | None = None,
    ) -> None:
        """``recipient``'s forwarder: committed rows are offered to it from now on."""
        self._readers[recipient] = _Reader(offer, reread)

    def detach(self, recipient: str) -> None:
        self._readers.pop(recipient, None)

    # -- the table --------------------------------------------------------------------------------

    async def load(self) -> None:
        """At start: the depth as the table has it (rows left by an earlier run)."""
        self.queues.load(await self.store.read(sizes))
        self.last_id = await self.store.read(highest_id)
        self.handed = await asyncio.to_thread(HandedMarks, self._handed_path, self.last_id)

    def insert(
        self,
        conn: sqlite3.Connection,
        rows: Sequence[Spec | SourcedSpec],  # created: µs
    ) -> list[OutboxRow]:
        """Inside the caller's transaction, the one that appends the rows' entries: a row never
        exists without its explanation. The depth counted them when they were admitted."""
        inserted = insert(conn, rows)
        if inserted:
            # Before the commit, and kept if it rolls back: too high only errs on the safe side.
            self.last_id = max(self.last_id, inserted[-1].id)
        return inserted

    @staticmethod
    def replace_with(conn: sqlite3.Connection, rows: Iterable[OutboxRow]) -> set[int]:
        """Inside the caller's transaction, the one that appends the rows' new entries; the ids
        of the rows still there."""
        return {row.id for row in rows if replace(conn, row)}

    def resized(self, recipient: str, customer: str, before: int, after: int) -> None:
        """A row's payload changed size when it was decided again: the quota counts the new one."""
        if after != before:
            self.queues.done(recipient, customer, 1, before)
            self.queues.added(recipient, customer, after)

    @staticmethod
    def delete_with(conn: sqlite3.Connection, ids: Iterable[int]) -> set[int]:
        """Inside the caller's transaction, the one that records why the rows did not leave;
        the ids of the rows that were there."""
        return delete(conn, ids)

    async def pending(self, recipient: str, *, after: int, limit: int) -> list[OutboxRow]:
        return await self.store.read(
            functools.partial(pending, recipient=recipient, after=after, limit=limit)
        )

    async def by_ids(self, ids: Sequence[int]) -> list[OutboxRow]:
        return await self.store.read(functools.partial(by_ids, ids=ids))

    async def delete(self, ids: Sequence[int], *, durable: bool = True) -> set[int]:
        """Delete rows by id; the caller reports those deleted ``gone`` once this committed."""
        return await self.store.transaction(functools.partial(delete, ids=ids), durable=durable)

    # -- the depth --------------------------------------------------------------------------------

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """Committed rows: offered to their recipients' forwarders; the outbox may now be full."""
        self._offer(rows)
        self._check_full()

    def _offer(self, rows: Sequence[OutboxRow]) -> None:
        by_recipient: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_recipient.setdefault(row.recipient, []).append(row)
        for recipient, mine in by_recipient.items():
            reader = self._readers.get(recipient)
            if reader is not None:
                reader.offer(mine)

    def added(self, rows: Sequence[OutboxRow]) -> None:
        """Rows committed outside the quota (erasure notices: owed whatever the quota says):
        counted, then offered. Intake pauses for them at the next commit, as for any row."""
        for row in rows:
            self.queues.added(row.recipient, row.customer, len(row.payload))
            self.last_id = max(self.last_id, row.id)
        self._offer(rows)

    def done(self, recipient: str, customer: str, count: int, payload_bytes: int = 0) -> None:
        """``count`` rows of ``customer`` with ``payload_bytes`` of payload left the outbox (sent,
        withheld at send, erased): that customer's share of the recipient's queue has that much
        more room."""
        self.queues.done(recipient, customer, count, payload_bytes)
        if (
            self.full.is_set()
            and sum(self.queues.rows.values()) < self.max_rows * ROOM_AGAIN
            and not self.queues.holding
        ):
            self.full.clear()
            self.has_room.set()

    def gone(self, recipient: str, rows: Iterable[tuple[str, int]]) -> None:
        """(customer, payload bytes) of each row of ``recipient`` that left the outbox."""
        counted: dict[str, tuple[int, int]] = {}
        for customer, size in rows:
            count, total = counted.get(customer, (0, 0))
            counted[customer] = (count + 1, total + size)
        for customer, (count, total) in counted.items():
            self.done(recipient, customer, count, total)

    @contextlib.asynccontextmanager
    async def erasing(self) -> AsyncIterator[None]:
        """Around a transaction that deletes rows of the outbox behind the forwarders' backs;
        call ``erased`` inside it, after the commit."""
        self._erasing += 1
        self.erasures += 1
        self.quiet.clear()
        try:
            yield
        finally:
            self._erasing -= 1
            self.erasures += 1
            if not self._erasing:
                self.quiet.set()

    def erased(
        self, customer: str, rows_by_recipient: dict[str, int], bytes_by_recipient: dict[str, int]
    ) -> None:
        """After an erasure's commit: its deleted rows' room back, and each forwarder concerned
        reads the table again (the rows it holds in memory may be gone)."""
        for recipient, count in rows_by_recipient.items():
            reader = self._readers.get(recipient)
            if reader is not None and reader.reread is not None:
                reader.reread()
            self.done(recipient, customer, count, bytes_by_recipient.get(recipient, 0))

    # -- the room signal ------------------------------------------------------------------------

    def pause_reason(self) -> str | None:
        """Why intake must pause (the outbox as a whole is full, or a ``hold`` recipient's
        queue is at its quota), or None."""
        total = sum(self.queues.rows.values())
        if total >= self.max_rows:
            return f"the outbox is full ({total} rows, limit outbox.max_rows {self.max_rows})"
        if self.queues.any_holding:  # asked after every commit: words only when pausing
            holding = sorted(self.queues.holding_shares)
            shares = ", ".join(f"{r} (customer {c}'s share)" for r, c in holding)
            return f"recipient {shares} at its queue quota (when_queue_full: hold)"
        return None

    def when_full(self) -> asyncio.Future[None]:
        """A future that completes when the outbox is (or becomes) full."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.full.is_set():
            waiter.set_result(None)
        else:
            self._full_waiters.append(waiter)
        return waiter

    def _check_full(self) -> None:
        if self.pause_reason() is None:
            return
        self.has_room.clear()
        self.full.set()
        for waiter in self._full_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._full_waiters.clear()
