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
on any connection. Sizes here are tree sizes, the size line of the checkpoint notes. The notes
themselves and the cosignature lines beside them are read through ``gateway.log.checkpoints``,
the one reader of stored checkpoints.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.errors import LogError
from gateway.log.checkpoints import SignedCheckpoint
from gateway.log.tree import TreeHashes, tree_info

__all__ = [
    "Progress",
    "consistency",
    "progress",
    "record_cosignature",
    "record_refusal",
    "record_size",
]


@dataclass(frozen=True, slots=True)
class Progress:
    chain_id: int
    size: int | None
    checkpoint_id: int | None
    at_us: int
    refused_status: int | None
    refused_reason: str | None
    refused_at_us: int | None


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
