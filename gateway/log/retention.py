"""Retention: forget old content, and drop old entries behind a signed checkpoint.

Two cuts, each per chain (one customer's log), each inside the caller's transaction:

- ``drop_content``: the erasable part of entries older than a cut-off (the payload as received
  and its topic, the rows of ``content`` and the ``topics`` no remaining content uses). The
  entries stay with their content commitments, so every chain and every proof verifies exactly
  as after an erasure; only the plain content is gone.
- ``compact``: for each chain, the newest checkpoint signed before ``older_than`` becomes the
  chain's *anchor*: the entries it covers are deleted (with their content), the checkpoints
  before it too, and the anchor row is kept. Verification of the remaining log starts from the
  anchor's signed head and size instead of the genesis hash, so the signature proves the entries
  that were dropped existed and fixes the hash the first remaining entry must chain from.
  Exports taken before compaction are self-contained and verify as they did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime

import orjson

from gateway.log.entry import us_from_at

__all__ = ["compact", "drop_content"]


def _chain_ids(conn: sqlite3.Connection, chains: Collection[str] | None) -> list[int]:
    rows = conn.execute("SELECT id, name FROM chains ORDER BY id").fetchall()
    return [int(i) for i, name in rows if chains is None or name in chains]


def drop_content(conn: sqlite3.Connection, chain: str, older_than: datetime) -> tuple[int, int]:
    """Delete the content (payload, topic) of ``chain``'s entries dated before ``older_than``;
    returns (content rows, topics) deleted. Entries, commitments and subject keys stay."""
    found = conn.execute("SELECT id FROM chains WHERE name = ?", (chain,)).fetchone()
    if found is None:
        return 0, 0
    chain_id = int(found[0])
    cur = conn.execute(
        "DELETE FROM content WHERE seq IN (SELECT seq FROM entries WHERE chain_id = ? AND at < ?)",
        (chain_id, us_from_at(older_than)),
    )
    contents = cur.rowcount
    topics = 0
    if contents:
        # A topic row is the device's topic in plain text: personal, and kept only while some
        # content still refers to it.
        cur = conn.execute(
            "DELETE FROM topics WHERE chain_id = ? AND id NOT IN"
            " (SELECT topic_id FROM content WHERE topic_id IS NOT NULL)",
            (chain_id,),
        )
        topics = cur.rowcount
    return contents, topics


def compact(
    conn: sqlite3.Connection, older_than: datetime, *, chains: Collection[str] | None = None
) -> int:
    """Delete entries covered by a checkpoint signed before ``older_than``, in ``chains`` (by
    name; all when None); returns how many.

    Runs in the caller's transaction (the writer's connection); call ``LogWriter.compact`` when a
    ``LogWriter`` is live, so its id caches are reloaded.
    """
    cutoff = us_from_at(older_than)
    dropped = 0
    for chain_id in _chain_ids(conn, chains):
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
        _collect(conn)
    return dropped


def _collect(conn: sqlite3.Connection) -> None:
    """Delete the bodies, names documents and texts no remaining entry refers to."""
    conn.execute("DELETE FROM bodies WHERE id NOT IN (SELECT DISTINCT body_id FROM entries)")
    used: set[bytes] = set()
    for (doc,) in conn.execute("SELECT doc FROM bodies"):
        body = orjson.loads(doc)
        if "names" in body:  # version 2: the texts are in the subject's names document
            used.add(bytes.fromhex(body["names"]))
        else:
            used.add(bytes.fromhex(body["text_de"]))
            used.add(bytes.fromhex(body["text_en"]))
    for table, column in (("texts", "digest"), ("names", "commitment")):
        stale = [
            (value,)
            for (value,) in conn.execute(f"SELECT {column} FROM {table}")
            if bytes(value) not in used
        ]
        conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", stale)
