"""Verifying one customer's tree onward from the checkpoint it was last verified at.

A whole verification (``gateway.log.verify.verify_connection``) reads and hashes every entry:
~2 s for 40,000 entries. A viewer that verifies the same growing tree again and again (the
portal's access report) keeps a :class:`Verified` — the tree's size at its largest verified
checkpoint, that checkpoint's root, the right edge (compact range) of that prefix, its last
leaf, the key it was pinned to and the checkpoints counted — and on the next build verifies only
what is new, with the one proof checker (``gateway.log.proof.check_tree``): the prefix enters
as a compacted start whose hashes are the *held* right edge, so

- every new entry is checked (layout, leaf, body, content, names) as in a whole verification;
- every new checkpoint's signature is checked, and its root recomputed from the held edge and
  the new leaves;
- the RFC 6962 consistency proof from the held checkpoint to the new tree is verified
  (``since``: the held size and root).

It fails closed: whatever does not fit the plain case answers ``None`` and the caller verifies
the whole tree. That is: no held state, a held state of another database, customer, tree, key or
pin; a key rotation anywhere on the box (a new key row); a tree moved or compacted (a base, an
old chain, dropped leaves); a new entry of a kind that changes more than its own row (an erasure,
a key rotation, a gateway event: handovers, retention, sealing); and, checked cheaply below the
held size, entries deleted or inserted (the count of entries below it), stored subtree hashes
changed (the compact range read from the database against the held edge) or the boundary
entry changed (its fields hashed again against the held leaf), and a body or text the
customer's entries name changed (each of their few hundred bodies and texts hashed again: the
report reads them for old entries too). Any problem the onward check
finds also answers ``None``: the whole verification then names the first bad entry as always.

What this cannot see without reading everything is a row below the held size changed in a way
that leaves the stored hashes alone; the whole verification (``einblick verify``) finds it, and
the caller bounds how long a held state is used before verifying whole again.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from gateway.errors import LogError
from gateway.log.chain import body_digest, text_digest
from gateway.log.keys import PublicKey
from gateway.log.leaf import entry_bytes
from gateway.log.legacy import verify_connection as verify_legacy
from gateway.log.merkle import RightEdge, leaf_hash
from gateway.log.note import Checkpoint, NoteError
from gateway.log.proof import check_tree
from gateway.log.reports import ChainReport, VerifyReport
from gateway.log.stored import rows_problem, tree_input
from gateway.log.tree import TreeHashes, TreeInfo, tree_info
from gateway.log.verdict import INCOMPLETE, Kept
from gateway.log.verify import verify_connection

__all__ = ["ONWARD_KINDS", "Verified", "hold", "verify_customer", "verify_onward"]

# Entry kinds that change nothing but their own row: an onward check of them is the same as a
# whole one. Every other kind (erasure, key_rotation, gateway_event) sends the caller back to a
# whole verification.
ONWARD_KINDS = frozenset(
    {
        "decision",
        "consent_given",
        "consent_withdrawn",
        "objection",
        "objection_lifted",
        "restriction",
        "restriction_lifted",
        "policy_loaded",
    }
)


@dataclass(frozen=True, slots=True)
class Verified:
    """A customer's tree as verified up to its largest verified checkpoint (tree size ``size``)."""

    database: str  # the resolved path of the log database
    origin: str  # the box's origin (meta)
    customer: str
    chain_id: int
    first_key: bytes  # key id the tree started with
    pinned: bytes  # the raw public key the verification pinned
    keys: int  # rows in ``keys`` when verified: a new one is a rotation
    size: int  # leaves covered by the verified checkpoint
    root: bytes  # that checkpoint's root
    edge: tuple[bytes, ...]  # the compact range of the first ``size`` leaves
    last_leaf: bytes  # the leaf hash of entry ``size - 1``
    checkpoints: int  # verified checkpoints of size <= ``size``
    notes: bytes  # SHA-256 of the stored notes of size <= ``size``: not checked again onward


def _plain(info: TreeInfo | None) -> bool:
    """A tree started on this box, never compacted, no 0.1.0 chain below it."""
    return info is not None and info.base == 0 and info.dropped == 0 and info.legacy_head is None


def _chain(conn: sqlite3.Connection, customer: str) -> int | None:
    row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
    return None if row is None else int(row[0])


def _origin(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    return "" if row is None else str(row[0])


def _key_rows(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM keys").fetchone()[0])


def _notes_digest(conn: sqlite3.Connection, chain_id: int, size: int) -> bytes:
    """The checkpoint rows the onward check does not open again (size <= ``size``), hashed:
    a note changed, added or removed below the held size sends the caller back to whole."""
    h = hashlib.sha256()
    for row_id, at_size, note in conn.execute(
        "SELECT id, size, note FROM checkpoints WHERE chain_id = ? AND size <= ?"
        " AND note IS NOT NULL ORDER BY id",
        (chain_id, size),
    ):
        h.update(f"{row_id}\0{at_size}\0{note}\0".encode())
    return h.digest()


def _stored_leaf(conn: sqlite3.Connection, chain_id: int, idx: int) -> tuple[bytes, bytes] | None:
    """(the leaf the entry's stored fields hash to, the leaf stored beside them)."""
    row = conn.execute(
        "SELECT e.at, b.digest, e.source, e.commitment, e.hash FROM entries e"
        " LEFT JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? AND e.idx = ?",
        (chain_id, idx),
    ).fetchone()
    if row is None:
        return None
    at, digest, source, commitment, stored = row
    raw = entry_bytes(
        idx,
        int(at),
        bytes(32) if digest is None else bytes(digest),
        bytes(source),
        None if commitment is None else bytes(commitment),
    )
    return leaf_hash(raw), bytes(stored)


def hold(
    conn: sqlite3.Connection, db: Path, customer: str, report: VerifyReport, pinned: bytes
) -> Verified | None:
    """What to keep from a whole verification ``report`` of ``customer`` just made on ``conn``
    (in the same read transaction), so the next one can go onward; None when it cannot."""
    chain = next((c for c in report.chains if c.customer == customer), None)
    chain_id = _chain(conn, customer)
    if chain is None or chain.problem is not None or report.key_problems or chain_id is None:
        return None
    info = tree_info(conn, chain_id)
    if info is None or not _plain(info) or chain.signed <= 0 or _key_rows(conn) != 1:
        return None
    return _held(conn, db, customer, info, pinned, chain.signed, chain.checkpoints)


def _held(  # noqa: PLR0917 -- the facts of one verified prefix
    conn: sqlite3.Connection,
    db: Path,
    customer: str,
    info: TreeInfo,
    pinned: bytes,
    size: int,
    checkpoints: int,
) -> Verified | None:
    """The held state of the first ``size`` leaves, whose checkpoint was just verified: its root
    from that checkpoint's note, its edge from the stored hashes — kept only when the edge folds
    to that root (so the edge is the verified prefix's, not whatever the database holds)."""
    row = conn.execute(
        "SELECT note FROM checkpoints WHERE chain_id = ? AND size = ? AND note IS NOT NULL LIMIT 1",
        (info.chain_id, size),
    ).fetchone()
    if row is None:
        return None
    note = str(row[0])
    try:
        cp = Checkpoint.parse(note[: note.find("\n\n") + 1])
        edge = tuple(TreeHashes(conn, info.chain_id, 0).compact_range(size))
    except (NoteError, LogError):
        return None
    leaf = _stored_leaf(conn, info.chain_id, size - 1)
    if cp.size != size or RightEdge(size, edge).root() != cp.root or leaf is None:
        return None
    if leaf[0] != leaf[1]:
        return None
    return Verified(
        str(db.resolve()),
        _origin(conn),
        customer,
        info.chain_id,
        info.first_key,
        pinned,
        _key_rows(conn),
        size,
        cp.root,
        edge,
        leaf[0],
        checkpoints,
        _notes_digest(conn, info.chain_id, size),
    )


def _prefix_unchanged(conn: sqlite3.Connection, held: Verified) -> bool:
    """The cheap checks below the held size: as many entries as leaves, the boundary entry's
    fields still hash to the held leaf (the stored edge is compared by the caller)."""
    count = conn.execute(
        "SELECT count(*) FROM entries WHERE chain_id = ? AND idx < ?", (held.chain_id, held.size)
    ).fetchone()[0]
    leaf = _stored_leaf(conn, held.chain_id, held.size - 1)
    return (
        int(count) == held.size
        and leaf == (held.last_leaf, held.last_leaf)
        and _notes_digest(conn, held.chain_id, held.size) == held.notes
    )


def _doc(raw: bytes) -> dict[str, object] | None:
    """A body's document; None when it is not a JSON object (edited by hand: verify whole)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _bodies_unchanged(conn: sqlite3.Connection, customer: str) -> bool:
    """Every stored body of ``customer`` still hashes to its digest, and every text it names to
    its own: the report reads the bodies and texts of old entries too, which the onward check
    does not open otherwise (a few hundred bodies: bodies repeat)."""
    refs: set[str] = set()
    for digest, raw in conn.execute("SELECT digest, doc FROM bodies"):
        doc = _doc(raw) if isinstance(raw, bytes) else None
        if doc is None:
            return False  # unreadable, or text where bytes belong: someone edited it
        if doc.get("customer") != customer:
            continue
        if body_digest(bytes(raw)) != bytes(digest):
            return False
        # Bodies of version 1 name their texts; version 2 bodies carry none (rendered on read).
        refs.update(r for r in (doc.get("text_de"), doc.get("text_en")) if isinstance(r, str))
    found = {
        bytes(d).hex(): str(t)
        for d, t in conn.execute(
            "SELECT digest, text FROM texts WHERE hex(digest) IN"
            " (SELECT upper(value) FROM json_each(?))",
            (orjson.dumps(sorted(refs)).decode(),),
        )
    }
    return all(ref in found and text_digest(found[ref]).hex() == ref for ref in refs)


def _same_tree(
    conn: sqlite3.Connection, db: Path, customer: str, pinned: bytes, held: Verified
) -> TreeInfo | None:
    chain_id = _chain(conn, customer)
    info = None if chain_id is None else tree_info(conn, chain_id)
    if (
        info is None
        or not _plain(info)
        or held.database != str(db.resolve())
        or held.customer != customer
        or held.chain_id != info.chain_id
        or held.first_key != info.first_key
        or held.pinned != pinned
        or held.origin != _origin(conn)
        or held.keys != _key_rows(conn)
    ):
        return None
    return info


def verify_onward(
    conn: sqlite3.Connection,
    db: Path,
    customer: str,
    pinned: PublicKey,
    held: Verified,
    *,
    public_key: PublicKey | None,
) -> tuple[VerifyReport, Verified] | None:
    """``customer``'s tree verified from ``held`` on (None: verify the whole tree instead).

    ``conn`` must be in a read transaction, so everything is read from one state of the log.
    The report has the shape ``verify_connection`` gives, the new held state covers the new
    largest verified checkpoint."""
    info = _same_tree(conn, db, customer, pinned.raw, held)
    if info is None or not _prefix_unchanged(conn, held) or not _bodies_unchanged(conn, customer):
        return None
    start = replace(info, dropped=held.size)  # the held prefix enters as a compacted start
    try:
        tree, stored = tree_input(conn, _origin(conn), customer, start)
    except LogError:  # a stored hash below the held size is missing
        return None
    if stored is not None or tuple(tree.start_hashes) != held.edge:
        return None
    for raw in tree.bodies.values():
        doc = _doc(raw)  # each body's digest and form are checked by check_tree below
        if doc is None or doc.get("kind") not in ONWARD_KINDS:
            return None
    verdict = check_tree(tree, pinned, since=Kept(held.size, held.root))
    if verdict.problem is not None and verdict.problem.code != INCOMPLETE:
        return None
    if rows_problem(conn, info, customer, tree) is not None:
        return None
    # The keys, the origin and the pin, as a whole verification reports them; no 0.1.0 chain
    # lies below a plain tree, so there is no old content to walk.
    report = verify_legacy(
        conn, customer=customer, public_key=public_key, check_content=False, legacy_only=True
    )
    chain = ChainReport(customer, 0)
    chain.size = verdict.size
    chain.signed = max(held.size, verdict.covered)
    chain.checkpoints = held.checkpoints + verdict.checkpoints
    report.chains = [chain]
    if chain.signed == held.size:
        return report, held
    moved = _held(conn, db, customer, info, pinned.raw, chain.signed, chain.checkpoints)
    if moved is None or moved.root != verdict.root:
        return None
    return report, moved


def verify_customer(
    conn: sqlite3.Connection,
    db: Path,
    customer: str,
    *,
    public_key: PublicKey | None,
    held: Verified | None,
) -> tuple[VerifyReport, Verified | None, bool]:
    """``customer``'s verification, onward from ``held`` when it can be, else whole; with the
    state to hold for next time and whether it went onward."""
    first = _first_key(conn, customer)
    pinned = public_key if public_key is not None else first
    if held is not None and pinned is not None:
        onward = verify_onward(conn, db, customer, pinned, held, public_key=public_key)
        if onward is not None:
            return onward[0], onward[1], True
    report = verify_connection(conn, customer=customer, public_key=public_key)
    kept = None if pinned is None else hold(conn, db, customer, report, pinned.raw)
    return report, kept, False


def _first_key(conn: sqlite3.Connection, customer: str) -> PublicKey | None:
    """The key the whole verification pins when none is given: the tree's first."""
    row = conn.execute(
        "SELECT k.public FROM trees t JOIN chains c ON c.id = t.chain_id"
        " JOIN keys k ON k.key_id = t.first_key WHERE c.name = ?",
        (customer,),
    ).fetchone()
    return None if row is None else PublicKey(bytes(row[0]))
