"""Moving one customer's tree from one instance's log database to another's.

The steps, in order (``gateway/log/SPEC.md`` §4, "Handover"; the record's bytes and checks are
``gateway.log.handovers``'):

1. :func:`close_tree` — on the old instance's writer: the final ``handing_over`` entry, the
   checkpoint covering it, and the old key's signature over the handover record. Run again on
   a tree already closed for the same destination, it writes nothing and returns the same
   record (Ed25519 signatures are deterministic), so a crash after it can be resumed.
2. :func:`read_tree` — every row of that tree from the old database, read-only: entries,
   bodies, texts, names documents, subject keys, topics, content, checkpoints with their
   cosignatures, the stored subtree hashes, and the public keys its checkpoints name.
3. :func:`adopt_tree` — into the new instance's database, in the caller's transaction: the
   same leaves at the same indexes (the tree continues), ids renumbered, the old instance's
   keys added below the box's own (negative ids, so "the box's current key" stays the newest
   row). Adopting the same tree twice is refused unless it is identical (then a no-op).
   The customer's consents, erasures and pseudonym keys come along (``gateway.log.carried``).
4. :func:`open_tree_record` — the new instance's first entry, the handover record, signed by
   both keys; appended by the new instance's writer after it reloads (``LogWriter.reload``).

A 0.1.0 chain sealed into the tree (``trees.legacy_head``) is not moved: its old entries are
not leaves of the tree, and a verifier of the new database could not check them. Such a
customer is refused with what to do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import orjson

from gateway.errors import LogError
from gateway.log.carried import Carried, adopt_carried, read_carried
from gateway.log.entry import EntryDraft
from gateway.log.handovers import (
    HANDING_OVER,
    handed_over_draft,
    handing_over_draft,
    handover_message,
)
from gateway.log.keys import PublicKey, Signer
from gateway.log.writer import LogWriter

__all__ = [
    "ClosedTree",
    "StoredCheckpoint",
    "StoredEntry",
    "TransferError",
    "TreeRows",
    "adopt_tree",
    "close_tree",
    "open_tree_record",
    "read_tree",
]


class TransferError(LogError):
    """A tree cannot be moved (or cannot be moved again) as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ClosedTree:
    """The old instance's side of a handover: its final checkpoint and its signature."""

    customer: str
    old_origin: str
    new_origin: str
    size: int
    root: bytes
    old_key: bytes
    new_key: bytes
    sig_old: bytes


def _last_body(conn: sqlite3.Connection, customer: str) -> dict[str, object] | None:
    row = conn.execute(
        "SELECT b.doc FROM entries e JOIN bodies b ON b.id = e.body_id JOIN chains c"
        " ON c.id = e.chain_id WHERE c.name = ? ORDER BY e.idx DESC LIMIT 1",
        (customer,),
    ).fetchone()
    if row is None:
        return None
    doc = orjson.loads(bytes(row[0]))
    return doc if isinstance(doc, dict) else None


def close_tree(
    conn: sqlite3.Connection,
    writer: LogWriter,
    customer: str,
    *,
    new_origin: str,
    new_key: PublicKey,
    now: datetime,
) -> ClosedTree:
    """Step 1, inside the caller's write transaction on the old instance (commit, then
    ``writer.committed()``). The caller must already have stopped deciding ``customer``'s
    messages: nothing may follow the final entry in this tree."""
    if writer.tree_size(customer) == 0:
        raise TransferError(f"handover of {customer!r}: this instance's log has no tree for it")
    last = _last_body(conn, customer)
    params = last.get("reason_params") if last is not None else None
    closed_before = last is not None and last.get("reason") == HANDING_OVER
    if closed_before:
        if not isinstance(params, dict) or (params.get("to"), params.get("new")) != (
            new_origin,
            new_key.raw.hex(),
        ):
            raise TransferError(
                f"handover of {customer!r}: this instance already handed the log to "
                f"{params.get('to') if isinstance(params, dict) else '?'}; a log moves to one "
                "place only. Finish that handover (run the same command again with its --to)"
            )
    else:
        writer.append([handing_over_draft(customer, new_origin, new_key, now)])
    writer.checkpoint(now)
    size = writer.tree_size(customer)
    _, root = writer.head(customer)
    old = writer.signer
    old_origin = writer.origin_of(customer)
    message = handover_message(old_origin, new_origin, size, root, old.public.raw, new_key.raw)
    return ClosedTree(
        customer, old_origin, new_origin, size, root, old.public.raw, new_key.raw, old.sign(message)
    )


class StoredEntry(NamedTuple):
    idx: int
    at: int
    digest: bytes  # the body's
    device: str | None
    recipient: str | None
    outcome: int | None
    source: bytes
    commitment: bytes | None
    leaf: bytes
    seq: int  # in the database it was read from


class StoredCheckpoint(NamedTuple):
    id: int  # in the database it was read from
    size: int
    head: bytes
    at: int
    key_id: bytes
    signature: bytes
    seq: int
    note: str | None


@dataclass(frozen=True, slots=True)
class TreeRows:
    """Every stored row of one customer's tree, as read from the old database."""

    customer: str
    base: int
    first_key: bytes
    dropped: int
    entries: list[StoredEntry]
    bodies: dict[bytes, bytes]  # digest -> doc
    texts: dict[bytes, str]
    names: list[tuple[str | None, bytes, bytes]]  # (device or None, commitment, doc)
    subject_keys: list[tuple[str | None, bytes]]
    topics: dict[int, tuple[str | None, str]]  # old topic id -> (device, topic)
    content: dict[int, tuple[int | None, bytes | None]]  # old seq -> (old topic id, payload)
    checkpoints: list[StoredCheckpoint]
    cosignatures: list[tuple[int, str, str, int]]  # (old checkpoint id, witness, line, ts)
    tree_hashes: list[tuple[int, int, bytes]]
    keys: dict[bytes, bytes]  # key id -> public key, every key the checkpoints name
    anchor: int | None  # old checkpoint id
    carried: Carried  # consents, erasures, pseudonym keys (gateway.log.carried)


def read_tree(db_path: Path, customer: str) -> TreeRows:
    """Step 2: the old database's rows of ``customer``'s tree (read-only)."""
    conn = sqlite3.connect(Path(db_path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        return _read(conn, customer)
    finally:
        conn.close()


def _atoms(conn: sqlite3.Connection) -> dict[int, str]:
    return {int(i): str(v) for i, v in conn.execute("SELECT id, value FROM atoms")}


def _read(conn: sqlite3.Connection, customer: str) -> TreeRows:
    row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
    if row is None:
        raise TransferError(f"handover of {customer!r}: the old instance's log has no tree for it")
    chain = int(row[0])
    tree = conn.execute(
        "SELECT base, legacy_head, first_key, dropped FROM trees WHERE chain_id = ?", (chain,)
    ).fetchone()
    if tree is None or tree[1] is not None:
        raise TransferError(
            f"handover of {customer!r}: its log continues a chain written by Einblick 0.1.0, "
            "whose old entries are not leaves of the tree and cannot move. Keep the customer "
            "on this instance (list it under it in cluster.instances)"
        )
    atoms = _atoms(conn)

    def atom(value: object) -> str | None:
        return None if value is None or int(str(value)) == 0 else atoms[int(str(value))]

    entries = [
        StoredEntry(
            int(idx),
            int(at),
            bytes(digest),
            atom(dev),
            atom(rcp),
            None if outcome is None else int(outcome),
            bytes(src),
            None if com is None else bytes(com),
            bytes(h),
            int(seq),
        )
        for idx, at, digest, dev, rcp, outcome, src, com, h, seq in conn.execute(
            "SELECT e.idx, e.at, b.digest, e.device_id, e.recipient_id, e.outcome, e.source,"
            " e.commitment, e.hash, e.seq FROM entries e JOIN bodies b ON b.id = e.body_id"
            " WHERE e.chain_id = ? ORDER BY e.idx",
            (chain,),
        )
    ]
    bodies = {
        bytes(d): bytes(doc)
        for d, doc in conn.execute(
            "SELECT DISTINCT b.digest, b.doc FROM bodies b JOIN entries e ON e.body_id = b.id"
            " WHERE e.chain_id = ?",
            (chain,),
        )
    }
    texts: dict[bytes, str] = {}
    for doc in bodies.values():
        value = orjson.loads(doc)
        for lang in ("text_de", "text_en"):
            digest = value.get(lang) if isinstance(value, dict) else None
            if isinstance(digest, str):
                found = conn.execute(
                    "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(digest),)
                ).fetchone()
                if found is not None:
                    texts[bytes.fromhex(digest)] = str(found[0])
    checkpoints = [
        StoredCheckpoint(
            int(i),
            int(n),
            bytes(h),
            int(at),
            bytes(k),
            bytes(sig),
            int(q),
            None if t is None else str(t),
        )
        for i, n, h, at, k, sig, q, t in conn.execute(
            "SELECT id, size, head, at, key_id, signature, seq, note FROM checkpoints"
            " WHERE chain_id = ? ORDER BY id",
            (chain,),
        )
    ]
    ids = {c.id for c in checkpoints}
    cosigs = [
        (int(a), str(b), str(c), int(d))
        for a, b, c, d in conn.execute(
            "SELECT checkpoint_id, witness, line, timestamp FROM cosignatures ORDER BY rowid"
        )
        if int(a) in ids
    ]
    wanted = {c.key_id for c in checkpoints} | {bytes(tree[2])}
    keys = {
        bytes(k): bytes(p)
        for k, p in conn.execute("SELECT key_id, public FROM keys")
        if bytes(k) in wanted
    }
    anchor = conn.execute("SELECT checkpoint_id FROM anchors WHERE chain_id = ?", (chain,))
    anchor_row = anchor.fetchone()
    return TreeRows(
        customer=customer,
        base=int(tree[0]),
        first_key=bytes(tree[2]),
        dropped=int(tree[3]),
        entries=entries,
        bodies=bodies,
        texts=texts,
        names=[
            (atom(d), bytes(c), bytes(doc))
            for d, c, doc in conn.execute(
                "SELECT device_id, commitment, doc FROM names WHERE chain_id = ?", (chain,)
            )
        ],
        subject_keys=[
            (atom(d), bytes(k))
            for d, k in conn.execute(
                "SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain,)
            )
        ],
        topics={
            int(i): (atom(d), str(t))
            for i, d, t in conn.execute(
                "SELECT id, device_id, topic FROM topics WHERE chain_id = ?", (chain,)
            )
        },
        content={
            int(s): (None if t is None else int(t), None if p is None else bytes(p))
            for s, t, p in conn.execute(
                "SELECT c.seq, c.topic_id, c.payload FROM content c JOIN entries e"
                " ON e.seq = c.seq WHERE e.chain_id = ?",
                (chain,),
            )
        },
        checkpoints=checkpoints,
        cosignatures=cosigs,
        tree_hashes=[
            (int(lv), int(i), bytes(h))
            for lv, i, h in conn.execute(
                "SELECT level, idx, hash FROM tree_hashes WHERE chain_id = ?", (chain,)
            )
        ],
        keys=keys,
        anchor=None if anchor_row is None else int(anchor_row[0]),
        carried=read_carried(conn, customer),
    )


def _atom_id(conn: sqlite3.Connection, value: str | None) -> int | None:
    if value is None:
        return None
    conn.execute("INSERT OR IGNORE INTO atoms (value) VALUES (?)", (value,))
    return int(conn.execute("SELECT id FROM atoms WHERE value = ?", (value,)).fetchone()[0])


def _same_tree(conn: sqlite3.Connection, chain: int, rows: TreeRows) -> bool:
    """Whether ``chain`` already holds exactly ``rows``' leaves (a resumed adoption)."""
    held = [
        bytes(h)
        for (h,) in conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? AND idx < ? ORDER BY idx",
            (chain, rows.base + rows.dropped + len(rows.entries)),
        )
    ]
    return held == [e.leaf for e in rows.entries]


def adopt_tree(conn: sqlite3.Connection, rows: TreeRows) -> bool:
    """Step 3, in the caller's write transaction on the new instance's database; the writer
    must reload afterwards. Returns False when this database already holds exactly that tree
    (a resumed handover), True when it was adopted now."""
    found = conn.execute("SELECT id FROM chains WHERE name = ?", (rows.customer,)).fetchone()
    if found is not None:
        if _same_tree(conn, int(found[0]), rows):
            return False
        raise TransferError(
            f"handover of {rows.customer!r}: this instance's log already holds another tree "
            "for the customer; two trees would be two histories. Move that log away (backup "
            "and remove the customer from this instance) or hand the customer to another one"
        )
    chain = int(
        conn.execute("INSERT INTO chains (name) VALUES (?)", (rows.customer,)).lastrowid or 0
    )
    conn.execute(
        "INSERT INTO trees (chain_id, base, legacy_head, first_key, dropped) VALUES (?, ?, NULL, ?, ?)",
        (chain, rows.base, rows.first_key, rows.dropped),
    )
    low = int(conn.execute("SELECT coalesce(min(id), 1) FROM keys").fetchone()[0])
    for key_id, public in rows.keys.items():
        if conn.execute("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)).fetchone() is None:
            # below every key of this box: the writer's "newest key is mine" check and the
            # 0.1.0 chain's key sequence read ids > 0 in order, and never see these
            low = min(low, 0) - 1
            conn.execute(
                "INSERT INTO keys (id, key_id, public, added_at) VALUES (?, ?, ?, 0)",
                (low, key_id, public),
            )
    bodies: dict[bytes, int] = {}
    for digest, doc in rows.bodies.items():
        conn.execute("INSERT OR IGNORE INTO bodies (digest, doc) VALUES (?, ?)", (digest, doc))
        bodies[digest] = int(
            conn.execute("SELECT id FROM bodies WHERE digest = ?", (digest,)).fetchone()[0]
        )
    for digest, text in rows.texts.items():
        conn.execute("INSERT OR IGNORE INTO texts (digest, text) VALUES (?, ?)", (digest, text))

    def subject(device: str | None) -> int:
        return _atom_id(conn, device) or 0

    conn.executemany(
        "INSERT INTO subject_keys (chain_id, device_id, key) VALUES (?, ?, ?)",
        [(chain, subject(d), k) for d, k in rows.subject_keys],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO names (chain_id, device_id, commitment, doc) VALUES (?, ?, ?, ?)",
        [(chain, subject(d), c, doc) for d, c, doc in rows.names],
    )
    topics: dict[int, int] = {}
    for old_id, (device, topic) in rows.topics.items():
        cur = conn.execute(
            "INSERT INTO topics (chain_id, device_id, topic) VALUES (?, ?, ?)",
            (chain, subject(device), topic),
        )
        topics[old_id] = int(cur.lastrowid or 0)
    top = conn.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM entries), 0),"
        " coalesce((SELECT max(seq) FROM checkpoints), 0))"
    ).fetchone()[0]
    seq = int(top)
    seqs: list[tuple[int, int]] = []  # (old seq, new seq), in index order
    for e in rows.entries:
        seq += 1
        seqs.append((e.seq, seq))
        conn.execute(
            "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                chain,
                e.idx,
                e.at,
                bodies[e.digest],
                _atom_id(conn, e.device),
                _atom_id(conn, e.recipient),
                e.outcome,
                e.source,
                e.commitment,
                e.leaf,
            ),
        )
        held = rows.content.get(e.seq)
        if held is not None:
            topic_id = None if held[0] is None else topics[held[0]]
            conn.execute("INSERT INTO content VALUES (?, ?, ?)", (seq, topic_id, held[1]))
    conn.executemany(
        "INSERT INTO tree_hashes VALUES (?, ?, ?, ?)",
        [(chain, level, i, h) for level, i, h in rows.tree_hashes],
    )
    checkpoint_ids: dict[int, int] = {}
    for cp in rows.checkpoints:
        # the checkpoint's place in this database's order: after the last entry it covered
        new_seq = max((n for o, n in seqs if o <= cp.seq), default=seq)
        cur = conn.execute(
            "INSERT INTO checkpoints (chain_id, size, head, at, key_id, signature, seq, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (chain, cp.size, cp.head, cp.at, cp.key_id, cp.signature, new_seq, cp.note),
        )
        checkpoint_ids[cp.id] = int(cur.lastrowid or 0)
    conn.executemany(
        "INSERT INTO cosignatures (checkpoint_id, witness, line, timestamp) VALUES (?, ?, ?, ?)",
        [(checkpoint_ids[c], w, line, ts) for c, w, line, ts in rows.cosignatures],
    )
    if rows.anchor is not None:
        conn.execute(
            "INSERT INTO anchors (chain_id, checkpoint_id) VALUES (?, ?)",
            (chain, checkpoint_ids[rows.anchor]),
        )
    try:
        adopt_carried(conn, rows.carried, dict(seqs))
    except sqlite3.DatabaseError as exc:
        raise TransferError(f"handover of {rows.customer!r}: {exc}") from exc
    return True


def open_tree_record(closed: ClosedTree, new: Signer, now: datetime) -> EntryDraft:
    """Step 4's entry: the handover record, checked against the old key and signed by ``new``."""
    if new.public.raw != closed.new_key:
        raise TransferError(
            f"handover of {closed.customer!r}: the old instance handed the log to key "
            f"{PublicKey(closed.new_key).fingerprint}, but this instance signs with "
            f"{new.fingerprint}; run the handover again against this instance's current key"
        )
    return handed_over_draft(
        closed.customer,
        now,
        old_origin=closed.old_origin,
        new_origin=closed.new_origin,
        size=closed.size,
        root=closed.root,
        old_key=PublicKey(closed.old_key),
        sig_old=closed.sig_old,
        new=new,
    )
