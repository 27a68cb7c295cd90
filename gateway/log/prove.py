"""Single-entry proofs in the c2sp.org/tlog-proof@v1 form: made from the database, checked alone.

A customer hands one entry to an authority without the rest of their log: the file holds the
entry's index, its RFC 6962 inclusion proof, the signed checkpoint it is in, and as ``extra``
the entry's 114 v2 bytes followed by its body's exact RFC 8785 bytes — what is needed to
recompute the leaf and to read what the entry says. Checking it needs the box's public key.

A version 2 body holds no texts or field paths, only the commitment to its names document
(``gateway.log.names``). While the box holds that document, ``extra`` goes on with a 0x00 byte,
the subject's 32-byte names salt and the document's exact RFC 8785 bytes, so an authority can
read the explanation of this one entry and check it against the body: RFC 8785 escapes every
control character, so a 0x00 byte never occurs inside the body and marks where it ends. After
the subject was forgotten the proof carries the body alone, as before.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.errors import LogError
from gateway.log.chain import body_digest
from gateway.log.checkpoints import latest_note
from gateway.log.keys import PublicKey
from gateway.log.leaf import ENTRY_SIZE, LeafError, entry_bytes, parse_entry
from gateway.log.merkle import ProofError, leaf_hash, verify_inclusion
from gateway.log.names import has_names, names_problem, names_salt
from gateway.log.note import ED25519_TYPE, Checkpoint, NoteError, TlogProof, Verifier, open_note
from gateway.log.tree import TreeHashes, tree_info
from gateway.log.verdict import OK, TAMPERED, UNUSABLE, Problem

__all__ = ["ProofVerdict", "check_entry_proof", "prove_entry_file"]

_NAMES_MARK = b"\x00"  # ends the body in ``extra`` when a names document follows


def prove_entry_file(db_path: str | Path, customer: str, entry: int) -> TlogProof:
    """Entry ``entry`` (tree index) of ``customer``'s log, in their newest signed checkpoint."""
    conn = sqlite3.connect(Path(db_path).absolute().as_uri() + "?mode=ro", uri=True)
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
        names = _names_part(conn, info.chain_id, bytes(doc))
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
    return TlogProof(entry, tuple(path), note, raw + bytes(doc) + names)


def _names_part(conn: sqlite3.Connection, chain_id: int, body: bytes) -> bytes:
    """0x00 || names salt || names document, when the body commits to one the box still holds
    with its subject's key; empty otherwise (a version 1 body, or the subject was forgotten)."""
    doc = orjson.loads(body)
    ref = doc.get("names") if isinstance(doc, dict) else None
    if not isinstance(ref, str) or not has_names(conn):
        return b""
    try:
        commitment = bytes.fromhex(ref)
    except ValueError:
        return b""
    row = conn.execute(
        "SELECT n.doc, k.key FROM names n JOIN subject_keys k"
        " ON k.chain_id = n.chain_id AND k.device_id = n.device_id"
        " WHERE n.chain_id = ? AND n.commitment = ?",
        (chain_id, commitment),
    ).fetchone()
    if row is None:
        return b""
    return _NAMES_MARK + names_salt(bytes(row[1])) + bytes(row[0])


@dataclass(frozen=True, slots=True)
class ProofVerdict:
    code: int
    origin: str
    size: int
    body: bytes
    problem: Problem | None
    names: bytes = b""  # the names document carried and checked against the body (RFC 8785)


def _refused(  # noqa: PLR0917 -- a problem's facts, in the order a Problem takes them
    code: int, cp: Checkpoint | None, index: int, what: str, expected: str, found: str
) -> ProofVerdict:
    """A verdict that proves nothing: no body is handed on, the problem says why."""
    origin, size = ("", 0) if cp is None else (cp.origin, cp.size)
    return ProofVerdict(code, origin, size, b"", Problem(code, index, what, expected, found))


def check_entry_proof(text: str, public: PublicKey) -> ProofVerdict:
    """Check a tlog-proof file against the key the customer trusts."""
    try:
        proof = TlogProof.parse(text)
        note = proof.checkpoint_note
        cp = Checkpoint.parse(note[: note.find("\n\n") + 1])
    except NoteError as exc:
        return _refused(UNUSABLE, None, 0, "not a proof", "c2sp.org/tlog-proof@v1", str(exc))
    try:
        open_note(note, [Verifier(cp.origin, ED25519_TYPE, public.raw)])
    except NoteError as exc:
        return _refused(
            TAMPERED,
            cp,
            proof.index,
            "the checkpoint is not signed by the key you trust",
            public.fingerprint,
            str(exc)[:120],
        )
    extra = proof.extra or b""
    if len(extra) < ENTRY_SIZE:
        return _refused(
            UNUSABLE, cp, proof.index, "no entry bytes to recompute the leaf", "extra", "none"
        )
    entry, rest = extra[:ENTRY_SIZE], extra[ENTRY_SIZE:]
    body, mark, names_part = rest.partition(_NAMES_MARK)
    try:
        index, _at, digest, _src, _c = parse_entry(entry)
        verify_inclusion(leaf_hash(entry), proof.index, cp.size, proof.proof, cp.root)
    except (LeafError, ProofError) as exc:
        return _refused(
            TAMPERED,
            cp,
            proof.index,
            "not included in the signed tree",
            "a valid inclusion proof",
            str(exc),
        )
    if index != proof.index:
        return _refused(
            TAMPERED,
            cp,
            proof.index,
            "the entry bytes carry another index",
            str(proof.index),
            str(index),
        )
    if body and body_digest(body) != digest:
        return _refused(
            TAMPERED,
            cp,
            index,
            "the body does not match the entry's digest",
            digest.hex()[:16],
            body_digest(body).hex()[:16],
        )
    if mark:
        problem = _names_check(index, body, names_part)
        if problem is not None:
            return ProofVerdict(TAMPERED, cp.origin, cp.size, b"", problem)
    return ProofVerdict(OK, cp.origin, cp.size, body, None, names_part[32:])


def _names_check(index: int, body: bytes, names_part: bytes) -> Problem | None:
    """The names document carried after the body reproduces the body's names commitment."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    ref = doc.get("names") if isinstance(doc, dict) else None
    try:
        commitment = bytes.fromhex(ref) if isinstance(ref, str) else b""
    except ValueError:
        commitment = b""
    if len(commitment) != 32:
        return Problem(
            TAMPERED,
            index,
            "a names document is carried but the body commits to none",
            "a version 2 body with a names commitment",
            "none",
        )
    if len(names_part) < 32:
        return Problem(TAMPERED, index, "names salt cut off", "32 bytes", str(len(names_part)))
    why = names_problem(commitment, names_part[:32], names_part[32:])
    return None if why is None else Problem(TAMPERED, index, *why)
