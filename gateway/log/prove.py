"""Single-entry proofs in the c2sp.org/tlog-proof@v1 form: made from the database, checked alone.

A customer hands one entry to an authority without the rest of their log: the file holds the
entry's index, its RFC 6962 inclusion proof, the signed checkpoint it is in, and as ``extra``
the entry's 114 v2 bytes followed by its body's exact RFC 8785 bytes — what is needed to
recompute the leaf and to read what the entry says. Checking it needs the box's public key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import LogError
from gateway.log.chain import body_digest
from gateway.log.checkpoints import latest_note
from gateway.log.keys import PublicKey
from gateway.log.leaf import ENTRY_SIZE, LeafError, entry_bytes, parse_entry
from gateway.log.merkle import ProofError, leaf_hash, verify_inclusion
from gateway.log.note import ED25519_TYPE, Checkpoint, NoteError, TlogProof, Verifier, open_note
from gateway.log.proof import OK, TAMPERED, UNUSABLE, Problem
from gateway.log.tree import TreeHashes, tree_info

__all__ = ["ProofVerdict", "check_entry_proof", "prove_entry_file"]


def prove_entry_file(db_path: str | Path, customer: str, entry: int) -> TlogProof:
    """Entry ``entry`` (tree index) of ``customer``'s log, in their newest signed checkpoint."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
        info = None if row is None else tree_info(conn, int(row[0]))
        note = latest_note(conn, customer)
        if info is None or note is None:
            raise LogError(f"prove: no signed log for customer {customer!r}")
        cp = Checkpoint.parse(note[: note.find("\n\n") + 1])
        if not 0 <= entry < cp.size:
            raise LogError(f"prove: entry {entry} is not in the signed tree of {cp.size} entries")
        found = conn.execute(
            "SELECT e.at, b.digest, e.source, e.commitment, b.doc FROM entries e"
            " JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? AND e.idx = ?",
            (info.chain_id, info.base + entry),
        ).fetchone()
        if found is None:
            raise LogError(f"prove: entry {entry} is no longer stored (compacted by retention)")
        at, digest, source, commitment, doc = found
        raw = entry_bytes(
            entry,
            int(at),
            bytes(digest),
            bytes(source),
            None if commitment is None else bytes(commitment),
        )
        path = TreeHashes(conn, info.chain_id, info.base).inclusion(entry, cp.size)
    finally:
        conn.close()
    return TlogProof(entry, tuple(path), note, raw + bytes(doc))


@dataclass(frozen=True, slots=True)
class ProofVerdict:
    code: int
    origin: str
    size: int
    body: bytes
    problem: Problem | None


def check_entry_proof(text: str, public: PublicKey) -> ProofVerdict:
    """Check a tlog-proof file against the key the customer trusts."""
    try:
        proof = TlogProof.parse(text)
        note = proof.checkpoint_note
        cp = Checkpoint.parse(note[: note.find("\n\n") + 1])
    except NoteError as exc:
        return ProofVerdict(
            UNUSABLE,
            "",
            0,
            b"",
            Problem(UNUSABLE, 0, "not a proof", "c2sp.org/tlog-proof@v1", str(exc)),
        )
    try:
        open_note(note, [Verifier(cp.origin, ED25519_TYPE, public.raw)])
    except NoteError as exc:
        return ProofVerdict(
            TAMPERED,
            cp.origin,
            cp.size,
            b"",
            Problem(
                TAMPERED,
                proof.index,
                "the checkpoint is not signed by the key you trust",
                public.fingerprint,
                str(exc)[:120],
            ),
        )
    extra = proof.extra or b""
    if len(extra) < ENTRY_SIZE:
        return ProofVerdict(
            UNUSABLE,
            cp.origin,
            cp.size,
            b"",
            Problem(UNUSABLE, proof.index, "no entry bytes to recompute the leaf", "extra", "none"),
        )
    entry, body = extra[:ENTRY_SIZE], extra[ENTRY_SIZE:]
    try:
        index, _at, digest, _src, _c = parse_entry(entry)
        verify_inclusion(leaf_hash(entry), proof.index, cp.size, proof.proof, cp.root)
    except (LeafError, ProofError) as exc:
        return ProofVerdict(
            TAMPERED,
            cp.origin,
            cp.size,
            b"",
            Problem(
                TAMPERED,
                proof.index,
                "not included in the signed tree",
                "a valid inclusion proof",
                str(exc),
            ),
        )
    if index != proof.index:
        return ProofVerdict(
            TAMPERED,
            cp.origin,
            cp.size,
            b"",
            Problem(
                TAMPERED,
                proof.index,
                "the entry bytes carry another index",
                str(proof.index),
                str(index),
            ),
        )
    if body and body_digest(body) != digest:
        return ProofVerdict(
            TAMPERED,
            cp.origin,
            cp.size,
            b"",
            Problem(
                TAMPERED,
                index,
                "the body does not match the entry's digest",
                digest.hex()[:16],
                body_digest(body).hex()[:16],
            ),
        )
    return ProofVerdict(OK, cp.origin, cp.size, body, None)
