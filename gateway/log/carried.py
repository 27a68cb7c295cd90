"""What moves with a customer's tree besides its entries: the rights the gateway enforces.

A customer's withdrawn consents and objections (``consent_events``), its erasures
(``erasures``) and its pseudonymisation keys (``pseudonym_keys``) decide what may leave the box
and how it looks. A handover that moved the tree without them would let the new instance send
what the customer had withdrawn, or show recipients new pseudonyms for the same devices. So they
are read with the tree (``gateway.log.transfer``) and written into the new database in the
same transaction, each row's ``entry_seq`` (the signed entry that recorded it) renumbered to
that entry's place in the new database.

Queued releases (``outbox``) and the acknowledgements of erasure notices stay with the old
instance, which forwards what it decided; they are not carried.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CARRIED_TABLES", "Carried", "adopt_carried", "read_carried"]

CARRIED_TABLES = ("consent_events", "erasures", "pseudonym_keys")


@dataclass(frozen=True, slots=True)
class Carried:
    """table -> (its column names without ``id``, its rows of the customer in id order)."""

    tables: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = field(
        default_factory=dict
    )


def _columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id")


def read_carried(conn: sqlite3.Connection, customer: str) -> Carried:
    """The customer's rows of every carried table, every column (as this release has them)."""
    tables: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {}
    for table in CARRIED_TABLES:
        columns = _columns(conn, table)
        order = " ORDER BY id" if table != "pseudonym_keys" else ""
        rows = conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE customer = ?{order}",
            (customer,),
        ).fetchall()
        tables[table] = (columns, [tuple(r) for r in rows])
    return Carried(tables)


def adopt_carried(conn: sqlite3.Connection, carried: Carried, seqs: Mapping[int, int]) -> None:
    """Write ``carried`` into the new database; ``seqs`` maps the old database's entry seqs to
    the adopted entries' new ones (an entry compacted away before the move maps to 0: no
    entry of this database)."""
    for table, (columns, rows) in carried.tables.items():
        if not rows:
            continue
        mine = _columns(conn, table)
        if set(columns) != set(mine):
            raise sqlite3.DatabaseError(
                f"{table}: the old instance's columns {sorted(columns)} are not this one's "
                f"{sorted(mine)}; run the same Einblick release on both instances"
            )
        at = columns.index("entry_seq") if "entry_seq" in columns else None
        renumbered = [
            row if at is None else (*row[:at], seqs.get(int(str(row[at])), 0), *row[at + 1 :])
            for row in rows
        ]
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            renumbered,
        )
