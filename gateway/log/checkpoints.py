"""The stored checkpoint notes: each log's newest, those signed since a given one, and the
witnesses' cosignature lines beside them.

``checkpoints.note`` holds each signed note verbatim (NULL for a 0.1.0 checkpoint); its
``size`` column is the chain position (``trees.base`` + the note's tree size). Cosignatures live
in ``cosignatures(checkpoint_id, line)`` once a witness has signed; until that table exists
there are none. Everything a note-consumer needs (export, proofs, the witness submitter) reads
the notes through here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.log.leaf import tree_origin

__all__ = ["StoredNote", "cosignatures", "latest_note", "notes_after"]


@dataclass(frozen=True, slots=True)
class StoredNote:
    id: int  # checkpoints.id (what cosignatures.checkpoint_id refers to)
    customer: str  # the log's name (``_gateway`` for the box's own)
    origin: str  # the note's first line, <box>/<customer>
    size: int  # the tree size the note signs
    note: str  # the signed note exactly as stored, without cosignatures


def cosignatures(conn: sqlite3.Connection) -> dict[int, str]:
    """Witness cosignature lines per checkpoint id (none when the table does not exist yet)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cosignatures'"
    ).fetchone()
    if not exists:
        return {}
    found: dict[int, str] = {}
    for checkpoint_id, line in conn.execute(
        "SELECT checkpoint_id, line FROM cosignatures ORDER BY checkpoint_id, line"
    ):
        text = str(line) if str(line).endswith("\n") else f"{line}\n"
        found[int(checkpoint_id)] = found.get(int(checkpoint_id), "") + text
    return found


def latest_note(conn: sqlite3.Connection, customer: str) -> str | None:
    """The newest signed checkpoint of ``customer``'s tree, with its cosignatures."""
    row = conn.execute(
        "SELECT k.id, k.note FROM checkpoints k JOIN chains c ON c.id = k.chain_id"
        " WHERE c.name = ? AND k.note IS NOT NULL ORDER BY k.size DESC, k.id DESC LIMIT 1",
        (customer,),
    ).fetchone()
    if row is None:
        return None
    return str(row[1]) + cosignatures(conn).get(int(row[0]), "")


def notes_after(conn: sqlite3.Connection, after_id: int = 0, limit: int = 1000) -> list[StoredNote]:
    """Notes signed after checkpoint ``after_id``, oldest first (a witness submitter's feed)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    box = "" if row is None else str(row[0])
    return [
        StoredNote(int(i), str(name), tree_origin(box, str(name)), int(size) - int(base), str(note))
        for i, name, size, base, note in conn.execute(
            "SELECT k.id, c.name, k.size, t.base, k.note FROM checkpoints k"
            " JOIN chains c ON c.id = k.chain_id JOIN trees t ON t.chain_id = k.chain_id"
            " WHERE k.note IS NOT NULL AND k.id > ? ORDER BY k.id LIMIT ?",
            (after_id, limit),
        )
    ]
