"""The book of erasures: every erasure read back with its notices (delivered? acknowledged
when?), a recipient's acknowledgement written into it, and the notices not acknowledged yet that
``einblick status`` shows.

An erasure writes its row and its notices in its own transaction (``gateway.rights.erasure.erase``);
this module only reads them back and records what recipients answer. The ``erasures`` and
``erasure_notices`` tables are created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TypedDict

from gateway.log.entry import at_from_us
from gateway.rights.report_model import Notice

__all__ = [
    "ErasureBook",
    "ErasureRow",
    "PendingNotice",
    "list_erasures",
    "record_ack",
]


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
    """Every erasure (oldest first) with its notices: delivered? acknowledged when?"""
    has_outbox = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
    ).fetchone()
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
            queued = has_outbox is not None and (
                conn.execute("SELECT 1 FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
                is not None
            )
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
