"""Forgetting a subject: its personal content, topics, names documents and key leave the box.

A subject is a customer (every device, and the entries with none) or one of its devices. What
goes: the content rows of its entries, its topics, its names documents
(``gateway.log.names``) and its subject keys — without the key, a guessed value can no longer
be confirmed against a salted commitment. What stays: commitments, bodies, leaves and tree
hashes, so every tree still verifies (``gateway/log/SPEC.md`` §5). The writer's connection runs
with ``secure_delete=ON`` (``gateway.log.schema``), so deleted rows are zeroed in their pages;
:func:`scrub` then copies the WAL into the database file and truncates it, so no old page keeps
a copy.
"""

from __future__ import annotations

import sqlite3

__all__ = ["forget", "scrub"]


def forget(conn: sqlite3.Connection, chain_id: int, device_id: int | None) -> int:
    """Delete the subject's personal data inside the caller's transaction; returns how many
    entries' content was deleted. ``device_id`` None is the whole customer."""
    where = "chain_id = ?"
    params: tuple[int, ...] = (chain_id,)
    if device_id is not None:
        where += " AND device_id = ?"
        params = (chain_id, device_id)
    cur = conn.execute(
        f"DELETE FROM content WHERE seq IN (SELECT seq FROM entries WHERE {where})", params
    )
    erased = cur.rowcount
    for table in ("topics", "names", "subject_keys"):
        conn.execute(f"DELETE FROM {table} WHERE {where}", params)
    return erased


def scrub(conn: sqlite3.Connection) -> bool:
    """After an erasure commits: copy the WAL into the database and truncate it.

    Returns False when a reader kept the checkpoint from finishing (call again later).
    """
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return int(busy) == 0
