"""Verification of the box's own log database, through the one proof checker.

Each customer's tree (and the gateway's own) is read into a ``gateway.log.proof.TreeInput`` and
checked by ``check_tree`` — the same code that checks a customer's bundle. A log upgraded from
0.1.0 also has its sealed hash chain below ``trees.base``: that part is checked by the legacy
path (``gateway.log.legacy``), and the tree's first entry must record exactly that chain's size
and final hash. The result keeps the shape every caller knows (``VerifyReport`` with one
``ChainReport`` per log, the first problem a ``ChainBroken`` naming the entry's ``idx``).

In the database view an unsigned tail (entries written in the last second, not yet in a
checkpoint) is reported as ``unsigned``, not as a failure: the gateway signs within a second,
and ``einblick export`` signs before it exports. ``einblick verify --db`` exits 2 for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ChainBroken, LogError
from gateway.log.keys import PublicKey
from gateway.log.leaf import ENTRY_SIZE, entry_bytes
from gateway.log.legacy import CheckpointRecord, EntryProof, prove_entry
from gateway.log.legacy import verify_connection as verify_legacy
from gateway.log.merkle import ProofError, leaf_hash, verify_inclusion
from gateway.log.moves import stored_origin_at
from gateway.log.note import ED25519_TYPE, Checkpoint, NoteError, Verifier, open_note
from gateway.log.opened_notes import OpenedNotes
from gateway.log.proof import check_tree
from gateway.log.reports import ChainReport, VerifyReport
from gateway.log.stored import note_signature, rows_problem, seal_problem, tree_input
from gateway.log.tree import TreeHashes, tree_info
from gateway.log.verdict import INCOMPLETE, NO_WITNESSES, TreeVerdict, WitnessPolicy

__all__ = [
    "TreeEntryProof",
    "checkpoint_valid",
    "entry_proof",
    "log_keys",
    "prove_tree_entry",
    "verify_connection",
    "verify_db",
]


def _has_trees(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trees'"
        ).fetchone()
    )


def verify_db(
    path: str | Path,
    *,
    customer: str | None = None,
    public_key: PublicKey | None = None,
    check_content: bool = True,
    witnesses: WitnessPolicy = NO_WITNESSES,
) -> VerifyReport:
    """Verify the log database at ``path`` (every log, or one customer's) read-only."""
    conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        return verify_connection(
            conn,
            customer=customer,
            public_key=public_key,
            check_content=check_content,
            witnesses=witnesses,
        )
    finally:
        conn.close()


def verify_connection(
    conn: sqlite3.Connection,
    *,
    customer: str | None = None,
    public_key: PublicKey | None = None,
    check_content: bool = True,
    witnesses: WitnessPolicy = NO_WITNESSES,
) -> VerifyReport:
    if not _has_trees(conn):  # a 0.1.0 database not yet upgraded (read-only here)
        return verify_legacy(
            conn, customer=customer, public_key=public_key, check_content=check_content
        )
    report = verify_legacy(
        conn,
        customer=customer,
        public_key=public_key,
        check_content=check_content,
        legacy_only=True,
    )
    origin = report.origin
    chains = dict(conn.execute("SELECT id, name FROM chains"))
    if customer is not None:
        chains = {i: n for i, n in chains.items() if n == customer}
    legacy_by_name = {c.customer: c for c in report.chains}
    out: list[ChainReport] = []
    for chain_id, name in chains.items():
        info = tree_info(conn, chain_id)
        legacy = legacy_by_name.get(name)
        if info is None:
            if legacy is not None:
                out.append(legacy)
            continue
        tree, stored = tree_input(conn, origin, name, info, check_content=check_content)
        pinned = public_key if public_key is not None else PublicKey(tree.first_key or bytes(32))
        verdict = (
            check_tree(tree, pinned, witnesses=witnesses)
            if tree.first_key
            else TreeVerdict(tree.origin, name)  # rows_problem names the missing key
        )
        chain = ChainReport(
            name,
            info.base + info.dropped if info.dropped else (0 if legacy is None else legacy.start),
        )
        chain.size = info.base + verdict.size
        chain.signed = info.base + verdict.covered
        chain.checkpoints = verdict.checkpoints + (0 if legacy is None else legacy.checkpoints)
        found: list[ChainBroken] = [] if stored is None else [stored]
        if legacy is not None and legacy.problem is not None:
            found.append(legacy.problem)
        for check in (rows_problem, seal_problem):
            problem = check(conn, info, name, tree)
            if problem is not None:
                found.append(problem)
        if verdict.problem is not None and verdict.problem.code != INCOMPLETE:
            p = verdict.problem
            found.append(ChainBroken(name, info.base + p.index, p.what, p.expected, p.found))
        problem = min(found, key=lambda f: f.index) if found else None
        chain.problem = problem
        out.append(chain)
    report.chains = out
    if customer is not None and not out:
        report.key_problems.append(f"no log for customer {customer!r} in this database")
    return report


@dataclass(frozen=True, slots=True)
class TreeEntryProof:
    """One entry's proof as a viewer shows it (the TUI's ✓): computed by this module."""

    leaf_valid: bool  # the stored fields hash to the stored leaf
    checkpoint: Checkpoint | None  # the smallest checkpoint covering the entry
    signature_valid: bool  # that checkpoint is signed by a key of this log
    included: bool  # the RFC 6962 inclusion proof leads from the leaf to its root


def prove_tree_entry(  # noqa: PLR0917 -- the tree, the entry, the keys, the memo
    conn: sqlite3.Connection,
    origin: str,
    chain_id: int,
    idx: int,
    keys: Iterable[bytes],
    notes: OpenedNotes | None = None,
) -> TreeEntryProof | None:
    """The proof of the entry at ``idx`` of a tree; None when ``idx`` lies in a sealed 0.1.0
    chain (the legacy ``prove_entry`` answers for those). ``notes``: a viewer's memo of the
    notes already verified (``gateway.log.opened_notes``), by their exact text and keys."""
    info = tree_info(conn, chain_id)
    name_row = conn.execute("SELECT name FROM chains WHERE id = ?", (chain_id,)).fetchone()
    if info is None or name_row is None or idx < info.base:
        return None
    index = idx - info.base
    row = conn.execute(
        "SELECT e.at, b.digest, e.source, e.commitment, e.hash FROM entries e"
        " LEFT JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? AND e.idx = ?",
        (chain_id, idx),
    ).fetchone()
    if row is None:
        return TreeEntryProof(False, None, False, False)
    at, digest, source, commitment, leaf = row
    raw = entry_bytes(
        index,
        int(at),
        bytes(32) if digest is None else bytes(digest),
        bytes(source),
        None if commitment is None else bytes(commitment),
    )
    leaf_valid = leaf_hash(raw) == bytes(leaf) and len(raw) == ENTRY_SIZE
    found = conn.execute(
        "SELECT note, signature FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL"
        " AND size > ? ORDER BY size LIMIT 1",
        (chain_id, idx),
    ).fetchone()
    if found is None:
        return TreeEntryProof(leaf_valid, None, False, False)
    note = str(found[0])
    copied = bytes(found[1]) == note_signature(note)  # what viewers show beside it
    try:
        cp = Checkpoint.parse(note[: note.find("\n\n") + 1])
    except NoteError:
        return TreeEntryProof(leaf_valid, None, False, False)
    log_origin = stored_origin_at(conn, origin, str(name_row[0]), cp.size, cp.origin)
    verifiers = [Verifier(log_origin, ED25519_TYPE, k) for k in keys]
    try:
        if notes is None:
            open_note(note, verifiers)
        else:
            notes.open(note, verifiers)
        signed = cp.origin == log_origin and copied
    except NoteError:
        signed = False
    try:
        proof = TreeHashes(conn, chain_id, info.base).inclusion(index, cp.size)
        verify_inclusion(bytes(leaf), index, cp.size, proof, cp.root)
        included = leaf_valid
    except (ProofError, LogError):  # a node not stored: not proven
        included = False
    return TreeEntryProof(leaf_valid, cp, signed, included)


def log_keys(conn: sqlite3.Connection) -> Mapping[bytes, bytes]:
    """Every public key the log has used, by key id."""
    return {bytes(k): bytes(p) for k, p in conn.execute("SELECT key_id, public FROM keys")}


def checkpoint_valid(  # noqa: PLR0917 -- the tree, the checkpoint, the memo
    conn: sqlite3.Connection,
    box_origin: str,
    chain_id: int,
    name: str,
    cp: CheckpointRecord,
    notes: OpenedNotes | None = None,
) -> bool:
    """Whether one stored checkpoint is signed as it says (a viewer's ✓ beside it).

    A tree checkpoint: its note verifies under the log's origin with the key its row names,
    and repeats the row's root. A 0.1.0 checkpoint: the legacy signature check. ``notes``: as
    for ``prove_tree_entry``."""
    row = conn.execute(
        "SELECT note FROM checkpoints WHERE chain_id = ? AND size = ? AND head = ?"
        " AND note IS NOT NULL LIMIT 1",
        (chain_id, cp.size, cp.head),
    ).fetchone()
    keys = log_keys(conn)
    if row is None:
        legacy = {k: PublicKey(p) for k, p in keys.items()}
        return prove_entry(box_origin, name, None, (), cp, legacy).signature_valid
    note = str(row[0])
    public = keys.get(cp.key_id)
    if public is None:
        return False
    claimed = note[: note.find("\n")]  # the note's first line: its origin
    origin = stored_origin_at(conn, box_origin, name, cp.size, claimed)
    verifiers = [Verifier(origin, ED25519_TYPE, public)]
    try:
        opened = open_note(note, verifiers) if notes is None else notes.open(note, verifiers)
        signed = Checkpoint.parse(opened.text)
    except NoteError:
        return False
    return (
        signed.origin == origin and signed.root == cp.head and note_signature(note) == cp.signature
    )


def entry_proof(
    conn: sqlite3.Connection,
    box_origin: str,
    chain_id: int,
    idx: int,
    notes: OpenedNotes | None = None,
) -> EntryProof | None:
    """A tree entry's proof in the shape viewers show (link = leaf recomputed, head = the
    inclusion proof reaches the covering checkpoint's root); None for a 0.1.0 chain entry."""
    found = prove_tree_entry(conn, box_origin, chain_id, idx, log_keys(conn).values(), notes)
    if found is None:
        return None
    checkpoint = None
    if found.checkpoint is not None:
        row = conn.execute(
            "SELECT size, head, at, key_id, signature FROM checkpoints WHERE chain_id = ?"
            " AND note IS NOT NULL AND size > ? ORDER BY size LIMIT 1",
            (chain_id, idx),
        ).fetchone()
        if row is not None:
            checkpoint = CheckpointRecord(
                int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]), bytes(row[4])
            )
    return EntryProof(found.leaf_valid, checkpoint, found.signature_valid, found.included)
