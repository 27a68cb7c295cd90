"""The recorded consent actions: the ``consent_events`` table, its one owner.

Each row is one action a person took on a grant (withdraw or give back a consent; object, or
lift an objection; restrict, or lift a restriction) with the signed entry that says so. A
running gateway restores its holds from them (``gateway.rights.consent``); anything that shows a
customer's grants without a running gateway (the TUI reading policy files) reads the holds from
here too, so a grant held back is never shown as sending. The table is created and upgraded in
``gateway.log.migrations``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from gateway.log.entry import at_from_us, us_from_at

__all__ = [
    "ConsentEvent",
    "Right",
    "forget_names",
    "held_grants",
    "history",
    "latest",
    "record",
]

# Which right an action exercised (GDPR Art. 7(3), 21(1), 18(1)).
Right = Literal["consent", "objection", "restriction"]


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    right: Right
    holds: bool  # the action held the grant back (withdraw / object / restrict)
    at: datetime
    by: str
    entry_seq: int


def latest(conn: sqlite3.Connection) -> dict[tuple[str, str], ConsentEvent]:
    """The latest recorded action per (customer, grant)."""
    rows = conn.execute(
        "SELECT customer, grant_id, action, at, by, entry_seq, right FROM consent_events e"
        " WHERE id = (SELECT MAX(id) FROM consent_events"
        " WHERE customer = e.customer AND grant_id = e.grant_id)"
    ).fetchall()
    return {
        (c, g): ConsentEvent(right, action == "withdraw", at_from_us(at), by, seq)
        for c, g, action, at, by, seq, right in rows
    }


def history(conn: sqlite3.Connection) -> list[tuple[str, str, bool, datetime, Right]]:
    """Every action in the order taken: (customer, grant, holds, when, right)."""
    return [
        (customer, grant, action == "withdraw", at_from_us(at), right)
        for customer, grant, action, at, right in conn.execute(
            "SELECT customer, grant_id, action, at, right FROM consent_events ORDER BY id"
        )
    ]


def record(
    conn: sqlite3.Connection,
    customer: str,
    grant: str,
    *,
    holds: bool,
    at: datetime,
    by: str,
    entry_seq: int,
    right: Right,
) -> None:
    """One action, in the caller's transaction (the one that appends its signed entry)."""
    conn.execute(
        "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq, right)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (customer, grant, "withdraw" if holds else "give", us_from_at(at), by, entry_seq, right),
    )


def forget_names(conn: sqlite3.Connection, customer: str) -> None:
    """Blank who took the customer's actions (an erasure of the whole customer); what was done
    and when stay: they restore the holds."""
    conn.execute("UPDATE consent_events SET by = '' WHERE customer = ?", (customer,))


def held_grants(db: Path) -> dict[tuple[str, str], Right]:
    """(customer, grant) held back now by their latest action, and by which right; read-only.
    Empty when the database does not exist or predates the table (a 0.1.0 log)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'consent_events'"
        ).fetchone()
        if found is None:
            return {}
        return {key: event.right for key, event in latest(conn).items() if event.holds}
    finally:
        conn.close()
