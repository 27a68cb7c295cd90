"""The one reader of stored checkpoint notes: each log's newest, those signed since a given
one, when a tree first outgrew a size, and the witnesses' cosignature lines beside them.

``checkpoints.note`` holds each signed note verbatim (NULL for a 0.1.0 checkpoint); its
``size`` column is the chain position (``trees.base`` + the note's tree size). Cosignatures live
in ``cosignatures(checkpoint_id, line)`` once a witness has signed; until that table exists
there are none. Everything a note-consumer needs (export, proofs, the witness submitter) reads
the notes through here. The witness tables' writes (``gateway.log.cosignatures``) are
not reads of the notes and live there.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.log.leaf import tree_origin

__all__ = [
    "SignedCheckpoint",
    "StoredNote",
    "cosignature_lines",
    "cosignatures",
    "first_uncovered_at",
    "latest_checkpoints",
    "latest_note",
    "notes_after",
]


@dataclass(frozen=True, slots=True)
class StoredNote:
    id: int  # checkpoints.id (what cosignatures.checkpoint_id refers to)
    customer: str  # the log's name (``_gateway`` for the box's own)
    origin: str  # the note's first line, <box>/<customer>
    size: int  # the tree size the note signs
    note: str  # the signed note exactly as stored, without cosignatures


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
    return str(row[1]) + _cosignature_text(conn, int(row[0]))


def _cosignature_text(conn: sqlite3.Connection, checkpoint_id: int) -> str:
    """One checkpoint's cosignature lines as ``cosignatures`` joins them (read for that
    checkpoint only: the table grows with every witnessed checkpoint)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cosignatures'"
    ).fetchone()
    if not exists:
        return ""
    lines = conn.execute(
        "SELECT line FROM cosignatures WHERE checkpoint_id = ? ORDER BY line", (checkpoint_id,)
    )
    return "".join(str(x) if str(x).endswith("\n") else f"{x}\n" for (x,) in lines)


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


def cosignature_lines(conn: sqlite3.Connection, checkpoint_id: int) -> list[str]:
    """The cosignature lines of one checkpoint, by witness name: append them to its note."""
    rows = conn.execute(
        "SELECT line FROM cosignatures WHERE checkpoint_id = ? ORDER BY witness", (checkpoint_id,)
    )
    return [str(r[0]) for r in rows]
