"""Logs made up for measurement: what the benchmarks and the sample log do to the log's tables.

``einblick bench`` and the sample log the TUI's tests read (``gateway.bench.sample``) build logs
of their own. Most of it goes through ``LogWriter`` like the gateway's writes, committed by
``gateway.log.batches``; the rest reaches below it -- keys preset so a sample is reproducible, the baseline's plain inserts, a synthetic
tree to time proofs on -- and lives here, so that no module outside ``gateway/log/`` names a
table of the log (``tests/test_tables.py``) and a change of the schema is made in one
package. Nothing here runs in the gateway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from gateway.log.entry import EntryDraft

__all__ = [
    "append_plain",
    "erasable_bytes",
    "leaf_inputs",
    "plant_tree",
    "preset_subject_keys",
]


def preset_subject_keys(
    conn: sqlite3.Connection,
    customers: Sequence[str],
    subjects: Sequence[str],
    key_for: Callable[[str, str], bytes],
) -> bool:
    """Before a sample log's first entry: a chain per customer, an atom per subject (devices
    and recipients), and each (customer, subject)'s key from ``key_for`` -- the writer draws a
    subject's key at random unless one is stored, so preset keys make the log the same to the
    byte for the same keys. Must run before a ``LogWriter`` opens the log. False, writing
    nothing, when the log already has a chain."""
    if conn.execute("SELECT count(*) FROM chains").fetchone()[0]:
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        for customer in customers:
            conn.execute("INSERT INTO chains (name) VALUES (?)", (customer,))
        for subject in subjects:
            conn.execute("INSERT INTO atoms (value) VALUES (?)", (subject,))
        # Ids read back as stored, in the order the sample has always taken them: the keys'
        # row order is part of "the same to the byte".
        for customer, chain_id in conn.execute("SELECT name, id FROM chains").fetchall():
            for subject, subject_id in conn.execute("SELECT value, id FROM atoms").fetchall():
                conn.execute(
                    "INSERT INTO subject_keys (chain_id, device_id, key) VALUES (?, ?, ?)",
                    (chain_id, subject_id, key_for(customer, subject)),
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def append_plain(conn: sqlite3.Connection, drafts: Sequence[EntryDraft], batch: int = 1000) -> None:
    """The log benchmark's baseline: the drafts' rows in the shapes of ``entries`` and
    ``content`` put in with plain ``executemany``, ``batch`` to a transaction -- ids from plain
    dicts, zero bytes where hashes go, nothing hashed or signed. The result is not a log that
    verifies; it is what storing the same rows costs, the floor the writer is measured against."""
    zero = bytes(32)
    ids: dict[str | None, int | None] = {None: None}
    seq = 1
    for start in range(0, len(drafts), batch):
        rows = []
        contents = []
        for d in drafts[start : start + batch]:
            for name in (d.customer, d.device, d.recipient, d.text_de):
                ids.setdefault(name, len(ids))
            rows.append(
                (seq, ids[d.customer], seq, int(d.at.timestamp() * 1e6), ids[d.text_de],
                 ids[d.device], ids[d.recipient], 1, d.source_digest,
                 None if d.content is None else zero, zero)
            )  # fmt: skip
            if d.content is not None:
                contents.append((seq, ids[d.device], d.content))
            seq += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany("INSERT INTO content VALUES (?, ?, ?)", contents)
        conn.execute("COMMIT")


def erasable_bytes(conn: sqlite3.Connection) -> int:
    """Bytes on disk of what an erasure can delete: the content and topics tables (payloads
    and topics) and the topics' unique index."""
    row = conn.execute(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN"
        " ('content', 'topics', 'sqlite_autoindex_topics_1')"
    ).fetchone()
    return int(row[0])


def leaf_inputs(
    conn: sqlite3.Connection, chain_id: int
) -> list[tuple[int, int, bytes, bytes, bytes | None]]:
    """(index, at, body digest, source commitment, content commitment) of each of the chain's
    entries in tree order: what its leaves (and a 0.1.0 chain's hashes) are made of."""
    rows = conn.execute(
        "SELECT e.idx, e.at, b.digest, e.source, e.commitment FROM entries e"
        " JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? ORDER BY e.idx",
        (chain_id,),
    ).fetchall()
    return [(i, a, bytes(d), bytes(s), None if c is None else bytes(c)) for i, a, d, s, c in rows]


def plant_tree(
    conn: sqlite3.Connection,
    levels: Sequence[tuple[int, int, bytes]],
    leaves: Sequence[tuple[int, bytes]],
) -> int:
    """A tree of synthetic leaves to time proofs on, as the only chain of an empty log: its
    stored level hashes (level, index, hash) and the leaf hashes (index, hash) of the blocks the
    proofs read, as entry rows that carry nothing else. Returns the chain's id."""
    chain_id = 1
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO chains (id, name) VALUES (?, 'bench')", (chain_id,))
        conn.execute(
            "INSERT INTO trees (chain_id, base, first_key) VALUES (?, 0, zeroblob(32))",
            (chain_id,),
        )
        conn.executemany(
            "INSERT INTO tree_hashes VALUES (?, ?, ?, ?)",
            [(chain_id, level, index, h) for level, index, h in levels],
        )
        conn.executemany(
            "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (seq, chain_id, index, 0, 0, None, None, 0, bytes(32), None, h)
                for seq, (index, h) in enumerate(leaves, start=1)
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return chain_id
