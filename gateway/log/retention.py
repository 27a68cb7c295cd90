"""Retention: drop old entries behind a signed checkpoint, so what remains still verifies.

For each chain, the newest checkpoint signed before ``older_than`` becomes the chain's *anchor*:
the entries it covers are deleted (with their content), the checkpoints before it too, and the
anchor row is kept. Verification of the remaining log starts from the anchor's signed head and
size instead of the genesis hash, so the signature proves the entries that were dropped existed
and fixes the hash the first remaining entry must chain from. Exports taken before compaction
are self-contained and verify as they did.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import orjson

from gateway.log.entry import us_from_at

__all__ = ["compact"]


def compact(conn: sqlite3.Connection, older_than: datetime) -> int:
    """Delete entries covered by a checkpoint signed before ``older_than``; returns how many.

    Runs in the caller's transaction (the writer's connection); call ``LogWriter.compact`` when a
    ``LogWriter`` is live, so its id caches are reloaded.
    """
    cutoff = us_from_at(older_than)
    dropped = 0
    for (chain_id,) in conn.execute("SELECT id FROM chains").fetchall():
        row = conn.execute(
            "SELECT id, size FROM checkpoints WHERE chain_id = ? AND at < ?"
            " ORDER BY size DESC, id DESC LIMIT 1",
            (chain_id, cutoff),
        ).fetchone()
        if row is None:
            continue
        checkpoint_id, size = row
        conn.execute(
            "DELETE FROM content WHERE seq IN"
            " (SELECT seq FROM entries WHERE chain_id = ? AND idx < ?)",
            (chain_id, size),
        )
        cur = conn.execute("DELETE FROM entries WHERE chain_id = ? AND idx < ?", (chain_id, size))
        dropped += cur.rowcount
        conn.execute(
            "DELETE FROM checkpoints WHERE chain_id = ? AND size <= ? AND id != ?",
            (chain_id, size, checkpoint_id),
        )
        conn.execute(
            "INSERT OR REPLACE INTO anchors (chain_id, checkpoint_id) VALUES (?, ?)",
            (chain_id, checkpoint_id),
        )
    if dropped:
        conn.execute("DELETE FROM bodies WHERE id NOT IN (SELECT DISTINCT body_id FROM entries)")
        used: set[bytes] = set()
        for (doc,) in conn.execute("SELECT doc FROM bodies"):
            body = orjson.loads(doc)
            used.add(bytes.fromhex(body["text_de"]))
            used.add(bytes.fromhex(body["text_en"]))
        stale = [
            (digest,)
            for (digest,) in conn.execute("SELECT digest FROM texts")
            if bytes(digest) not in used
        ]
        conn.executemany("DELETE FROM texts WHERE digest = ?", stale)
    return dropped
