"""Retention: forget old content, and drop old entries behind a signed checkpoint.

Two cuts, each per chain (one customer's log), each inside the caller's transaction:

- ``drop_content``: the erasable part of entries older than a cut-off (the payload as received
  and its topic, the rows of ``content`` and the ``topics`` no remaining content uses). The
  entries stay with their content commitments, so every chain and every proof verifies exactly
  as after an erasure; only the plain content is gone.
- ``compact``: for each tree, the entries below the newest checkpoint signed before
  ``older_than``, rounded down to whole blocks of 256 leaves, are deleted (with their content
  and the checkpoints inside them); the stored hashes of those blocks stay, so the remaining
  log's roots, proofs and bundles (``start_hashes``) still recompute. Exports taken before
  compaction are self-contained and verify as they did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime

import orjson

from gateway.log.entry import us_from_at
from gateway.log.tree import BLOCK

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

    A tree drops whole blocks of 256 leaves only (``trees.dropped``): their level-8 (and
    higher) hashes stay in ``tree_hashes``, so every remaining entry's proof, the writer's
    right edge and a bundle's ``start_hashes`` are still computed from what is stored. A sealed
    0.1.0 chain below the tree goes with the first block. Runs in the caller's transaction
    (``LogWriter.compact`` when a writer is live, so its caches are reloaded).
    """
    cutoff = us_from_at(older_than)
    dropped = 0
    for chain_id in _chain_ids(conn, chains):
        tree = conn.execute(
            "SELECT base, dropped FROM trees WHERE chain_id = ?", (chain_id,)
        ).fetchone()
        if tree is None:
            continue
        base, before = int(tree[0]), int(tree[1])
        row = conn.execute(
            "SELECT max(size) FROM checkpoints WHERE chain_id = ? AND at < ? AND note IS NOT NULL",
            (chain_id, cutoff),
        ).fetchone()
        if row[0] is None:
            continue
        leaves = int(row[0]) - base
        keep_from = leaves - leaves % BLOCK
        if keep_from <= before:
            continue
        cut = base + keep_from
        conn.execute(
            "DELETE FROM content WHERE seq IN"
            " (SELECT seq FROM entries WHERE chain_id = ? AND idx < ?)",
            (chain_id, cut),
        )
        cur = conn.execute("DELETE FROM entries WHERE chain_id = ? AND idx < ?", (chain_id, cut))
        dropped += cur.rowcount
        conn.execute("DELETE FROM checkpoints WHERE chain_id = ? AND size <= ?", (chain_id, cut))
        conn.execute("DELETE FROM anchors WHERE chain_id = ?", (chain_id,))
        conn.execute("UPDATE trees SET dropped = ? WHERE chain_id = ?", (keep_from, chain_id))
    if dropped:
        _collect(conn)
    return dropped


def _collect(conn: sqlite3.Connection) -> None:
    """Delete the bodies and texts no remaining entry refers to."""
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
