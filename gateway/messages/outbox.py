"""The durable outbox: what a recipient is still owed, committed with its log entry.

A row is written in the same transaction as the log entry that explains it, and deleted once the
recipient's broker has acknowledged it (PUBACK). A crash between the PUBACK and the delete sends
the row again: at-least-once, with duplicates bounded by the forwarder's in-flight window.
Payloads are personal data: forgetting a device deletes its queued rows (``erase``).

The ``outbox`` table is created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "OutboxRow",
    "delete",
    "depth",
    "erase",
    "insert",
    "pending",
    "sizes",
]


@dataclass(frozen=True, slots=True)
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
    # time.monotonic() when the row entered the outbox in this process (its commit follows at
    # once); 0.0 for rows read back from the database. Not stored: only for latency figures.
    queued: float = 0.0


def insert(
    conn: sqlite3.Connection, rows: Sequence[tuple[int, str, str, str, str, str, bytes, int]]
) -> list[OutboxRow]:
    """Insert (entry_seq, recipient, customer, device, grant, topic, payload, created µs) tuples."""
    if not rows:
        return []
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    first = (row[0] if row else 0) + 1
    # Explicit ids: one executemany instead of a round trip per row for lastrowid.
    conn.executemany(
        "INSERT INTO outbox (id, entry_seq, recipient, customer, device, grant_id, topic, payload, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(first + i, *row) for i, row in enumerate(rows)],
    )
    queued = time.monotonic()
    return [OutboxRow(first + i, *row, queued=queued) for i, row in enumerate(rows)]


def pending(conn: sqlite3.Connection, recipient: str, *, after: int, limit: int) -> list[OutboxRow]:
    cursor = conn.execute(
        "SELECT id, entry_seq, recipient, customer, device, grant_id, topic, payload, created"
        " FROM outbox WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?",
        (recipient, after, limit),
    )
    return [OutboxRow(*row) for row in cursor]


def delete(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])


def depth(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(
        conn.execute("SELECT recipient, COUNT(*) FROM outbox GROUP BY recipient").fetchall()
    )


def sizes(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (recipient, customer): rows waiting and their payload bytes (what the queue quotas
    count)."""
    rows = conn.execute(
        "SELECT recipient, customer, COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        " GROUP BY recipient, customer"
    ).fetchall()
    return {(str(r), str(c)): (int(n), int(b)) for r, c, n, b in rows}


def erase(conn: sqlite3.Connection, customer: str, device: str | None = None) -> int:
    """Delete queued payloads of a customer (or one device): forgetting reaches the queue too."""
    if device is None:
        cursor = conn.execute("DELETE FROM outbox WHERE customer = ?", (customer,))
    else:
        cursor = conn.execute(
            "DELETE FROM outbox WHERE customer = ? AND device = ?", (customer, device)
        )
    return cursor.rowcount
