"""The book of erasures: every erasure read back with its notices (delivered? acknowledged
when?), a recipient's acknowledgement written into it, and the notices not acknowledged yet that
``einblick status`` shows.

The book owns the ``erasures`` and ``erasure_notices`` tables (created and upgraded in
``gateway.log.migrations``): an erasure writes its row and its notices through it, in the
erasure's own transaction (``gateway.rights.erasure.erase``), and it reads them back and records
what recipients answer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TypedDict

from gateway.log.entry import at_from_us
from gateway.messages import outbox
from gateway.rights.report_model import Notice

__all__ = [
    "ErasureBook",
    "ErasureRow",
    "PendingNotice",
    "forget_requesters",
    "list_erasures",
    "record_ack",
    "record_erasure",
    "record_notice",
]


def record_erasure(
    conn: sqlite3.Connection,
    *,
    customer: str,
    device: str | None,
    at_us: int,
    requested_by: str,
    entry_seq: int,
    content: int,
    queued: int,
    keys: int,
    retained: int,
) -> int:
    """The erasure's row, in the caller's transaction; its id."""
    cur = conn.execute(
        "INSERT INTO erasures (customer, device, at, requested_by, entry_seq, content, queued,"
        " keys, retained) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (customer, device, at_us, requested_by, entry_seq, content, queued, keys, retained),
    )
    return int(cur.lastrowid or 0)


def record_notice(
    conn: sqlite3.Connection, notice: str, erasure_id: int, recipient: str, outbox_id: int
) -> None:
    """A notice queued for ``recipient`` (outbox row ``outbox_id``), in the erasure's transaction."""
    conn.execute(
        "INSERT INTO erasure_notices (notice, erasure_id, recipient, outbox_id)"
        " VALUES (?, ?, ?, ?)",
        (notice, erasure_id, recipient, outbox_id),
    )


def forget_requesters(conn: sqlite3.Connection, customer: str) -> None:
    """Blank who asked for the customer's earlier erasures (the customer is forgotten, and the
    people named beside them go too); counts, times and entries stay."""
    conn.execute("UPDATE erasures SET requested_by = '' WHERE customer = ?", (customer,))


def record_ack(conn: sqlite3.Connection, recipient: str, notice: str, at: int) -> bool:
    """Store a recipient's acknowledgement (``at`` in µs since the epoch); False when no such
    notice went to that recipient."""
    cur = conn.execute(
        "UPDATE erasure_notices SET acked_at = coalesce(acked_at, ?)"
        " WHERE notice = ? AND recipient = ?",
        (at, notice, recipient),
    )
    return cur.rowcount > 0


class ErasureRow(TypedDict):
    """One erasure as ``list_erasures`` reads it: the control API's reply, ``einblick erasures
    --json`` and the portal's report state write it key for key, in this order."""

    erasure: int
    customer: str
    device: str | None  # None: the whole customer
    at: str  # when it was requested, ISO 8601
    requested_by: str  # blank once the customer was forgotten (the name went with them)
    entry_seq: int  # the signed erasure entry
    content_erased: int
    queued_erased: int
    keys_destroyed: int
    retained_cleared: int
    notices: list[Notice]


def list_erasures(conn: sqlite3.Connection, customer: str | None = None) -> list[ErasureRow]:
    """Every erasure (oldest first) with its notices: delivered? acknowledged when? None in a
    log written before there was a book (0.1.0, opened read-only: the table was never made)."""
    if (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'erasures'"
        ).fetchone()
        is None
    ):
        return []
    has_outbox = outbox.present(conn)
    sql = (
        "SELECT id, customer, device, at, requested_by, entry_seq, content, queued, keys,"
        " retained FROM erasures"
    )
    params: list[str] = []
    if customer is not None:
        sql += " WHERE customer = ?"
        params.append(customer)
    out: list[ErasureRow] = []
    for row in conn.execute(sql + " ORDER BY id", params).fetchall():
        notices: list[Notice] = []
        for notice, recipient, outbox_id, acked_at in conn.execute(
            "SELECT notice, recipient, outbox_id, acked_at FROM erasure_notices"
            " WHERE erasure_id = ? ORDER BY recipient",
            (row[0],),
        ).fetchall():
            queued = has_outbox and outbox.queued(conn, outbox_id)
            notices.append(
                {
                    "notice": notice,
                    "recipient": recipient,
                    # An acknowledgement proves delivery even before the sent row's delete
                    # (batched after the PUBACK) is committed.
                    "delivered": acked_at is not None or not queued,
                    "acknowledged_at": _iso(acked_at),
                }
            )
        out.append(
            {
                "erasure": row[0],
                "customer": row[1],
                "device": row[2],
                "at": at_from_us(row[3]).isoformat(),
                "requested_by": row[4],
                "entry_seq": row[5],
                "content_erased": row[6],
                "queued_erased": row[7],
                "keys_destroyed": row[8],
                "retained_cleared": row[9],
                "notices": notices,
            }
        )
    return out


def _iso(at_us: int | None) -> str | None:
    return None if at_us is None else at_from_us(at_us).isoformat()


@dataclass(frozen=True, slots=True)
class PendingNotice:
    """An erasure notice a recipient has not acknowledged yet, as ``einblick status`` lists it
    (its ``ErasureNotice`` reads these attributes)."""

    notice: str
    recipient: str
    customer: str
    device: str | None
    requested_at: str  # when the erasure was requested, ISO 8601


class ErasureBook:
    """What ``einblick status`` shows: erasure notices not yet acknowledged, kept in memory."""

    def __init__(self) -> None:
        self.unacknowledged: dict[str, PendingNotice] = {}  # by notice id

    def load(self, conn: sqlite3.Connection) -> None:
        self.unacknowledged = {}
        for erasure in list_erasures(conn):
            self.add(erasure)

    def add(self, erasure: ErasureRow) -> None:
        """One of ``list_erasures``'s erasures: its notices not yet acknowledged."""
        for notice in erasure["notices"]:
            if notice["acknowledged_at"] is None:
                self.unacknowledged[notice["notice"]] = PendingNotice(
                    notice=notice["notice"],
                    recipient=notice["recipient"],
                    customer=erasure["customer"],
                    device=erasure["device"],
                    requested_at=erasure["at"],
                )

    def acknowledged(self, notice: str) -> None:
        self.unacknowledged.pop(notice, None)

    def pending(self) -> list[PendingNotice]:
        """The unacknowledged notices, oldest request first."""
        return sorted(self.unacknowledged.values(), key=lambda n: n.requested_at)
