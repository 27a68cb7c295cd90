"""Witnesses' cosignatures on the log's checkpoints, and how far each witness has followed.

The one module that reads and writes the two tables of migration 5:

- ``cosignatures(checkpoint_id, witness, line, timestamp)``: one row per witness and checkpoint
  it cosigned. ``line`` is the witness's c2sp.org/tlog-cosignature signature line exactly as it
  arrived (``— <name> <base64>\\n``), stored only after it verified against the witness key the
  installer configured, so appending the lines to ``checkpoints.note`` gives the cosigned note
  a bundle carries.
- ``witness_progress(witness, chain_id, size, checkpoint_id, at, refused_*)``: per witness (its
  vkey, so a replaced key starts over) and tree, the size it last cosigned (``checkpoint_id``
  NULL when the size was learned from its 409 answer) and its last refusal, which status shows
  until a later checkpoint is cosigned.

Functions take the connection: writes run inside the store's single writer transaction, reads
on any connection. Sizes here are tree sizes, the size line of the checkpoint notes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.errors import LogError
from gateway.log.tree import TreeHashes, tree_info

__all__ = [
    "Progress",
    "SignedCheckpoint",
    "consistency",
    "cosignature_lines",
    "first_uncovered_at",
    "latest_checkpoints",
    "progress",
    "record_cosignature",
    "record_refusal",
    "record_size",
]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """The newest signed note of one tree."""

    id: int
    chain_id: int
    chain: str  # the customer (or the gateway's own log)
    size: int  # tree size, as the note says
    note: str
    at_us: int

    @property
    def text(self) -> str:
        return self.note[: self.note.rfind("\n\n") + 1]


@dataclass(frozen=True, slots=True)
class Progress:
    chain_id: int
    size: int | None
    checkpoint_id: int | None
    at_us: int
    refused_status: int | None
    refused_reason: str | None
    refused_at_us: int | None


def _tree_size(note: str) -> int:
    return int(note.split("\n", 2)[1])


def latest_checkpoints(conn: sqlite3.Connection) -> list[SignedCheckpoint]:
    rows = conn.execute(
        "SELECT k.id, k.chain_id, c.name, k.note, k.at FROM checkpoints k"
        " JOIN chains c ON c.id = k.chain_id"
        " WHERE k.id IN (SELECT max(id) FROM checkpoints WHERE note IS NOT NULL GROUP BY chain_id)"
        " ORDER BY c.name"
    ).fetchall()
    return [
        SignedCheckpoint(int(i), int(c), str(n), _tree_size(str(note)), str(note), int(at))
        for i, c, n, note, at in rows
    ]


def first_uncovered_at(conn: sqlite3.Connection, chain_id: int, size: int) -> int | None:
    """The time (µs) of the first checkpoint of a tree larger than ``size``: since then, a
    witness that cosigned ``size`` has been behind."""
    row = conn.execute(
        "SELECT min(k.at) FROM checkpoints k JOIN trees t ON t.chain_id = k.chain_id"
        " WHERE k.chain_id = ? AND k.note IS NOT NULL AND k.size - t.base > ?",
        (chain_id, size),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def consistency(conn: sqlite3.Connection, chain_id: int, old: int, new: int) -> list[bytes]:
    """RFC 6962 consistency proof between two sizes of a stored tree."""
    info = tree_info(conn, chain_id)
    if info is None:
        raise LogError(f"log tree #{chain_id} does not exist")
    return TreeHashes(conn, chain_id, info.base).consistency(old, new)


def progress(conn: sqlite3.Connection, witness: str) -> dict[int, Progress]:
    rows = conn.execute(
        "SELECT chain_id, size, checkpoint_id, at, refused_status, refused_reason, refused_at"
        " FROM witness_progress WHERE witness = ?",
        (witness,),
    ).fetchall()
    return {int(r[0]): Progress(int(r[0]), *r[1:]) for r in rows}


def record_cosignature(
    conn: sqlite3.Connection,
    *,
    witness: str,
    name: str,
    checkpoint: SignedCheckpoint,
    line: str,
    timestamp: int,
    at_us: int,
) -> None:
    """Store a verified cosignature line and move the witness's progress to its checkpoint."""
    conn.execute(
        "INSERT OR REPLACE INTO cosignatures (checkpoint_id, witness, line, timestamp)"
        " VALUES (?, ?, ?, ?)",
        (checkpoint.id, name, line, timestamp),
    )
    conn.execute(
        "INSERT INTO witness_progress (witness, chain_id, size, checkpoint_id, at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (witness, chain_id) DO UPDATE SET"
        " size = excluded.size, checkpoint_id = excluded.checkpoint_id, at = excluded.at,"
        " refused_status = NULL, refused_reason = NULL, refused_at = NULL",
        (witness, checkpoint.chain_id, checkpoint.size, checkpoint.id, at_us),
    )


def record_size(
    conn: sqlite3.Connection, witness: str, chain_id: int, size: int, at_us: int
) -> None:
    """The witness told us (409) the size it last cosigned; our checkpoint of it is unknown."""
    conn.execute(
        "INSERT INTO witness_progress (witness, chain_id, size, checkpoint_id, at)"
        " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (witness, chain_id) DO UPDATE SET"
        " size = excluded.size, checkpoint_id = NULL, at = excluded.at",
        (witness, chain_id, size, at_us),
    )


def record_refusal(
    conn: sqlite3.Connection, *, witness: str, chain_id: int, status: int, reason: str, at_us: int
) -> None:
    conn.execute(
        "INSERT INTO witness_progress (witness, chain_id, size, checkpoint_id, at,"
        " refused_status, refused_reason, refused_at) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?)"
        " ON CONFLICT (witness, chain_id) DO UPDATE SET refused_status = excluded.refused_status,"
        " refused_reason = excluded.refused_reason, refused_at = excluded.refused_at",
        (witness, chain_id, at_us, status, reason[:1000], at_us),
    )


def cosignature_lines(conn: sqlite3.Connection, checkpoint_id: int) -> list[str]:
    """The cosignature lines of one checkpoint, by witness name: append them to its note."""
    rows = conn.execute(
        "SELECT line FROM cosignatures WHERE checkpoint_id = ? ORDER BY witness", (checkpoint_id,)
    )
    return [str(r[0]) for r in rows]
