"""Legacy: the 0.1.0 hash chains' verification, kept for logs (and v1 exports) written before
migration 4. A migrated log's chain part (entries below ``trees.base``) is checked here, its
tree by ``gateway.log.proof``.

Verification: recompute every chain from its start, check every checkpoint signature.

What is checked, per chain (a customer's, or the gateway's own ``_gateway``):

- entries come in order with consecutive indexes from the chain's start (genesis, or the signed
  compaction anchor): a gap is a deleted entry, a repeat an inserted or reordered one;
- every entry hash is recomputed from the previous hash, the entry's fields and its body (whose
  digest is recomputed from the stored body and texts) and compared with the stored hash;
- the columns kept beside the body for filtering (chain, device, recipient, outcome) agree with it;
- where personal content is still held, it matches the entry's salted commitment;
- every checkpoint is signed by a trusted key over the head the chain actually has at its size,
  and no checkpoint covers more entries than exist (a truncated tail).

Keys: with a pinned public key (``--key``), only that key and keys linked to it by rotation
records signed by both old and new key are trusted; without one, the log's first key is trusted
and the report says so. The first problem of each chain is reported as a ``ChainBroken`` naming
the entry index and what was expected versus found; entries after the last valid checkpoint are
reported as the unsigned tail.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.errors import ChainBroken
from gateway.log.chain import (
    _ENTRY,
    _INDEX_AT,
    GATEWAY_CHAIN,
    body_digest,
    checkpoint_message,
    content_commitment,
    entry_hash,
    genesis_hash,
    salt_for,
    text_digest,
)
from gateway.log.entry import OUTCOMES
from gateway.log.keys import PublicKey, fingerprint
from gateway.log.legacy_keys import load_keys, trusted_keys
from gateway.log.reports import ChainReport, VerifyReport

__all__ = [
    "ChainWalk",
    "CheckpointRecord",
    "EntryProof",
    "prove_entry",
    "verify_connection",
    "verify_db",
]


def short(value: bytes) -> str:
    return value.hex()[:16] + "…"


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    size: int
    head: bytes
    at: int
    key_id: bytes
    signature: bytes


class ChainWalk:
    """Recomputes one chain entry by entry; stops at the first problem."""

    __slots__ = (
        "_checks",
        "_pos",
        "expected",
        "next_checkpoint",
        "origin",
        "prev",
        "report",
        "trusted",
    )

    def __init__(
        self,
        origin: str,
        customer: str,
        checkpoints: Sequence[CheckpointRecord],
        trusted: dict[bytes, PublicKey],
        anchor: CheckpointRecord | None = None,
    ) -> None:
        self.origin = origin
        self.trusted = trusted
        self.report = ChainReport(customer, 0 if anchor is None else anchor.size)
        self.expected = self.report.start
        self.report.size = self.expected
        self.report.signed = self.expected
        self.prev = genesis_hash(origin, customer) if anchor is None else anchor.head
        if anchor is not None:
            bad = self._signature_problem(anchor)
            if bad:
                self.fail(anchor.size, "compaction anchor " + bad[0], bad[1], bad[2])
        ordered = sorted(checkpoints, key=lambda c: (c.size, c.at))
        self._checks = [c for c in ordered if c.size > self.expected]
        self._pos = 0
        self.next_checkpoint = self._checks[0].size if self._checks else -1
        self.report.checkpoints = len(ordered)

    def _signature_problem(self, c: CheckpointRecord) -> tuple[str, str, str] | None:
        key = self.trusted.get(c.key_id)
        if key is None:
            return (
                "signed by an untrusted key",
                " or ".join(k.fingerprint for k in self.trusted.values()) or "a trusted key",
                fingerprint(c.key_id),
            )
        message = checkpoint_message(
            origin=self.origin,
            customer=self.report.customer,
            size=c.size,
            head=c.head,
            at_us=c.at,
            key_id=c.key_id,
        )
        if not key.verify(c.signature, message):
            return ("signature invalid", f"a signature by {key.fingerprint}", short(c.signature))
        return None

    @property
    def broken(self) -> bool:
        return self.report.problem is not None

    def fail(self, index: int, what: str, expected: str, found: str) -> None:
        if self.report.problem is None:
            self.report.problem = ChainBroken(self.report.customer, index, what, expected, found)

    def step(  # noqa: PLR0917 -- once per entry: positional is measurably faster
        self,
        index: int,
        at: int,
        body: bytes,
        source: bytes,
        commitment: bytes | None,
        stored: bytes,
    ) -> None:
        if self.report.problem is not None:
            return
        expected = self.expected
        if index != expected:
            if index > expected:
                self.fail(expected, "entry missing", f"index {expected}", f"index {index}")
            else:
                self.fail(
                    index, "duplicate or reordered entry", f"index {expected}", f"index {index}"
                )
            return
        computed = entry_hash(self.prev, index, at, body, source, commitment)
        if computed != stored:
            self.fail(index, "hash mismatch", short(computed), short(stored))
            return
        self.prev = computed
        self.expected = expected + 1
        if self.expected == self.next_checkpoint:
            self.check_points()

    def check_points(self) -> None:
        while self._pos < len(self._checks) and self._checks[self._pos].size == self.expected:
            c = self._checks[self._pos]
            self._pos += 1
            bad = self._signature_problem(c)
            if bad is not None:
                self.fail(c.size - 1, f"checkpoint at size {c.size} " + bad[0], bad[1], bad[2])
                return
            if c.head != self.prev:
                self.fail(
                    self.report.signed,
                    f"checkpoint at size {c.size} does not match the entries "
                    f"{self.report.signed}..{c.size - 1} (head hash)",
                    short(c.head),
                    short(self.prev),
                )
                return
            self.report.signed = c.size
        self.next_checkpoint = self._checks[self._pos].size if self._pos < len(self._checks) else -1

    def finish(self) -> ChainReport:
        self.report.size = self.expected
        if self.report.problem is None and self._pos < len(self._checks):
            c = self._checks[self._pos]
            if c.size < self.expected:  # a checkpoint at a size the walk skipped
                self.fail(c.size - 1, "checkpoint out of order", f"size {self.expected}", str(c))
            else:
                self.fail(
                    self.expected,
                    f"entry missing: a checkpoint covers {c.size} entries (truncated tail)",
                    f"{c.size} entries",
                    f"{self.expected}",
                )
        return self.report


@dataclass(frozen=True, slots=True)
class EntryProof:
    """One entry's proof as a viewer shows it: its link to its predecessor, and the first
    checkpoint covering it (signature, and whether the chain walked from the entry reaches the
    signed head)."""

    link_valid: bool
    checkpoint: CheckpointRecord | None
    signature_valid: bool
    head_matches: bool


def prove_entry(  # noqa: PLR0917 -- the facts of one proof, all needed
    origin: str,
    customer: str,
    prev: bytes | None,
    entries: Iterable[tuple[int, int, bytes, bytes, bytes | None, bytes]],
    checkpoint: CheckpointRecord | None,
    keys: Mapping[bytes, PublicKey],
) -> EntryProof:
    """Check one entry with the same ``ChainWalk`` that ``einblick verify`` runs.

    ``prev`` is the hash before the entry (its predecessor's, the genesis, or the compaction
    anchor's head; None when none is known); ``entries`` are (index, at, body digest, source,
    commitment, stored hash), the entry itself first, then its successors up to the checkpoint
    (fewer: the head is not reached and ``head_matches`` is False). A checkpoint signature is
    valid when one of ``keys`` (by key id) signed it.
    """
    rows = iter(entries)
    first = next(rows, None)
    walk = ChainWalk(origin, customer, [], dict(keys))
    link_valid = False
    if first is not None and prev is not None:
        walk.prev, walk.expected = prev, first[0]
        walk.step(*first)
        link_valid = not walk.broken
    if checkpoint is None:
        return EntryProof(link_valid, None, signature_valid=False, head_matches=False)
    signature_valid = walk._signature_problem(checkpoint) is None
    head_matches = False
    if link_valid:
        for row in rows:
            walk.step(*row)
            if walk.broken:
                break
        head_matches = (
            not walk.broken and walk.expected == checkpoint.size and walk.prev == checkpoint.head
        )
    return EntryProof(link_valid, checkpoint, signature_valid, head_matches)


def verify_db(
    path: str | Path,
    *,
    customer: str | None = None,
    public_key: PublicKey | None = None,
    check_content: bool = True,
) -> VerifyReport:
    """Verify the log database at ``path`` (all chains, or one customer's) read-only."""
    conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        return verify_connection(
            conn, customer=customer, public_key=public_key, check_content=check_content
        )
    finally:
        conn.close()


def verify_connection(
    conn: sqlite3.Connection,
    *,
    customer: str | None = None,
    public_key: PublicKey | None = None,
    check_content: bool = True,
    legacy_only: bool = False,
) -> VerifyReport:
    """The 0.1.0 chains; with ``legacy_only``, only a migrated log's part below ``trees.base``."""
    old = " AND idx < (SELECT base FROM trees t WHERE t.chain_id = entries.chain_id)"
    only = old if legacy_only else ""
    cp_only = " AND note IS NULL" if legacy_only else ""
    row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    origin = "" if row is None else str(row[0])
    report = VerifyReport(origin, pinned=public_key is not None)
    trusted, report.key_problems = trusted_keys(origin, load_keys(conn), public_key)
    report.trusted = [k.fingerprint for k in trusted.values()]
    chains = dict(conn.execute("SELECT id, name FROM chains"))
    if customer is not None:
        chains = {i: n for i, n in chains.items() if n == customer}
        if not chains:
            report.key_problems.append(f"no chain for customer {customer!r} in this log")
            return report
    atoms = {str(v): int(i) for i, v in conn.execute("SELECT id, value FROM atoms")}
    texts_ok: dict[str, bool] = {}
    for digest, text in conn.execute("SELECT digest, text FROM texts"):
        texts_ok[bytes(digest).hex()] = text_digest(text) == digest
    chain_ids = {n: i for i, n in chains.items()}
    # per body: recomputed digest, problem (if any), expected (chain, device, recipient, outcome)
    bodies: dict[int, tuple[bytes, tuple[str, str, str] | None, tuple[object, ...]]] = {}
    for body_id, stored, doc in conn.execute("SELECT id, digest, doc FROM bodies"):
        digest = body_digest(bytes(doc))
        problem: tuple[str, str, str] | None = None
        expect: tuple[object, ...] = ()
        try:
            b = orjson.loads(doc)
            for lang in ("text_de", "text_en"):
                if not texts_ok.get(b[lang], False):
                    problem = (f"explanation text ({lang}) changed or missing", b[lang][:16], "?")
            expect = (
                chain_ids.get(b["customer"] or GATEWAY_CHAIN, -1),
                None if b["device"] is None else atoms.get(b["device"], -1),
                None if b["recipient"] is None else atoms.get(b["recipient"], -1),
                OUTCOMES.get(b["outcome"], -1),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            problem = ("body unreadable", "a canonical JSON body", str(exc)[:40])
        if digest != stored:
            problem = ("body changed", short(bytes(stored)), short(digest))
        bodies[body_id] = (digest, problem, expect)
    walks: dict[int, ChainWalk] = {}
    anchors = {
        int(r[0]): CheckpointRecord(r[1], bytes(r[2]), r[3], bytes(r[4]), bytes(r[5]))
        for r in conn.execute(
            "SELECT a.chain_id, c.size, c.head, c.at, c.key_id, c.signature"
            " FROM anchors a JOIN checkpoints c ON c.id = a.checkpoint_id"
            + (" WHERE c.note IS NULL" if legacy_only else "")
        )
    }
    for chain_id, name in chains.items():
        cps = [
            CheckpointRecord(r[0], bytes(r[1]), r[2], bytes(r[3]), bytes(r[4]))
            for r in conn.execute(
                "SELECT size, head, at, key_id, signature FROM checkpoints WHERE chain_id = ?"
                + cp_only,
                (chain_id,),
            )
        ]
        walks[chain_id] = ChainWalk(origin, name, cps, trusted, anchors.get(chain_id))
    if customer is None:
        rows: sqlite3.Cursor = conn.execute(
            "SELECT chain_id, idx, at, body_id, source, commitment, hash, device_id,"
            " recipient_id, outcome FROM entries WHERE 1" + only + " ORDER BY seq"
        )
    else:
        rows = conn.execute(
            "SELECT chain_id, idx, at, body_id, source, commitment, hash, device_id,"
            " recipient_id, outcome FROM entries WHERE chain_id = ?" + only + " ORDER BY seq",
            (next(iter(chains)),),
        )
    missing_body: tuple[bytes, tuple[str, str, str] | None, tuple[object, ...]] = (
        b"",
        ("body missing", "a stored body", "none"),
        (),
    )
    good = {i: (d, e) for i, (d, p, e) in bodies.items() if p is None}
    sha256 = hashlib.sha256
    pack = _INDEX_AT.pack
    prefix = _ENTRY
    for chain_id, idx, at, body_id, source, commitment, stored, dev, rec, out in rows:
        walk = walks.get(chain_id)
        # The fast path: the same computation as ChainWalk.step, inlined (half the time per
        # entry); anything unusual falls through to the careful path below.
        if walk is not None and walk.report.problem is None and idx == walk.expected:
            known = good.get(body_id)
            if known is not None and known[1] == (chain_id, dev, rec, out):
                computed = sha256(
                    b"".join(
                        (
                            prefix,
                            walk.prev,
                            pack(idx, at),
                            known[0],
                            source,
                            b"\x00" if commitment is None else b"\x01" + commitment,
                        )
                    )
                ).digest()
                if computed == stored:
                    walk.prev = computed
                    walk.expected = idx + 1
                    if walk.expected == walk.next_checkpoint:
                        walk.check_points()
                    continue
        walk = walks.get(chain_id)
        if walk is None:
            name = f"chain #{chain_id}"
            walk = walks[chain_id] = ChainWalk(origin, name, [], trusted)
            walk.fail(idx, "entry of an unknown chain", "a known chain", name)
        if walk.report.problem is not None:
            continue
        digest, problem, expect = bodies.get(body_id, missing_body)
        if problem is not None:
            walk.fail(idx, *problem)
            continue
        if expect != (chain_id, dev, rec, out):
            walk.fail(
                idx,
                "filter columns disagree with the entry body",
                repr(expect),
                repr((chain_id, dev, rec, out)),
            )
            continue
        walk.step(idx, at, digest, source, commitment, stored)
    if check_content:
        _check_content(conn, walks, chains, legacy_only=legacy_only)
    report.chains = [w.finish() for w in walks.values()]
    return report


def _check_content(
    conn: sqlite3.Connection,
    walks: dict[int, ChainWalk],
    chains: dict[int, str],
    *,
    legacy_only: bool = False,
) -> None:
    old = " WHERE e.idx < (SELECT base FROM trees t WHERE t.chain_id = e.chain_id)"
    keys = {(r[0], r[1]): bytes(r[2]) for r in conn.execute("SELECT * FROM subject_keys")}
    rows = conn.execute(
        "SELECT e.chain_id, e.idx, e.device_id, e.commitment, t.topic, c.topic_id, c.payload"
        " FROM content c JOIN entries e ON e.seq = c.seq LEFT JOIN topics t ON t.id = c.topic_id"
        + (old if legacy_only else "")
    )
    for chain_id, idx, device_id, commitment, topic, topic_id, payload in rows:
        walk = walks.get(chain_id)
        if walk is None:
            continue
        if walk.report.problem is not None and walk.report.problem.index <= idx:
            continue
        if topic_id is not None and topic is None:
            _replace(walk, idx, "content topic missing", "a stored topic", "none")
            continue
        key = keys.get((chain_id, device_id or 0))
        if key is None or commitment is None:
            _replace(walk, idx, "content held without a key or commitment", "both", "missing")
            continue
        computed = content_commitment(
            salt_for(key, chains[chain_id], idx), topic, None if payload is None else bytes(payload)
        )
        if computed != commitment:
            _replace(
                walk,
                idx,
                "content does not match its commitment",
                short(commitment),
                short(computed),
            )


def _replace(walk: ChainWalk, index: int, what: str, expected: str, found: str) -> None:
    """Record a content problem if it comes before the chain's current first problem."""
    current = walk.report.problem
    if current is None or index < current.index:
        walk.report.problem = ChainBroken(walk.report.customer, index, what, expected, found)
