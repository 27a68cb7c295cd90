"""The one proof checker: does a log's tree, as given, prove every entry it holds?

Pure: no files, no SQL. ``gateway.log.bundle`` (a customer's export) and ``gateway.log.verify``
(the box's own database) both turn what they read into a :class:`TreeInput` and call
:func:`check_tree`; the TUI, the report, ``einblick status`` and ``einblick verify`` therefore
all say "verified" for the same reason. What is checked, in order (the first failure wins):

1. every entry is 114 bytes of layout v2 at the next index (a gap: deleted; a repeat or a
   smaller index: inserted or swapped), and hashes to the leaf listed beside it (a byte flip is
   named at its own index);
2. every body an entry names is present, is RFC 8785 canonical, hashes to its digest and
   belongs to this customer;
3. rotation records (``key_rotation`` bodies) are signed by the outgoing and the incoming key
   over (origin, index, old, new) and continue the key sequence that starts at ``first_key``;
   the pinned key must be one of that sequence (else: a replaced key);
4. each checkpoint is a C2SP note for this origin (another origin: a foreign checkpoint),
   signed by the key valid at its size (a retired key signs nothing later), with the witness
   policy's cosignatures, and its root equals the root recomputed from the entries (a
   checkpoint covering more entries than given: a truncated log);
5. personal content given beside an entry matches its commitment, and content an entry
   committed to but that is absent is covered by a signed erasure or retention entry after it;
6. every entry is covered by a verified checkpoint — else the verdict is *incomplete*.

Verdict codes (also ``einblick verify``'s exit codes): 0 verified, 1 tampered, 2 incomplete
(something is not covered), 3 unusable input (raised as :class:`UnusableInput`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from gateway.errors import LogError
from gateway.log.absence import check_content
from gateway.log.chain import GATEWAY_CHAIN, body_digest
from gateway.log.jcs import is_canonical
from gateway.log.keys import PublicKey, fingerprint, key_id_of
from gateway.log.leaf import ENTRY_LAYOUT, ENTRY_SIZE, ENTRY_VERSION, rotation_message_v2
from gateway.log.levels import Levels, consistency_from, levels_of, prefix_root
from gateway.log.merkle import EMPTY_ROOT, ProofError, verify_consistency
from gateway.log.note import (
    ED25519_TYPE,
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
)

__all__ = [
    "INCOMPLETE",
    "NO_WITNESSES",
    "OK",
    "TAMPERED",
    "UNUSABLE",
    "Kept",
    "Problem",
    "TreeInput",
    "TreeVerdict",
    "UnusableInput",
    "WitnessPolicy",
    "check_tree",
    "levels_of",
    "prefix_root",
]

OK, TAMPERED, INCOMPLETE, UNUSABLE = 0, 1, 2, 3
NO_WITNESSES: WitnessPolicy
_ZERO32 = bytes(32)


class UnusableInput(LogError):
    """The input cannot be checked at all (not a bundle, wrong format, unreadable key)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong: at entry ``index`` (tree index), ``what``, expected vs found."""

    code: int
    index: int
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """A checkpoint counts only with ``required`` valid cosignatures from ``witnesses``.

    ``required`` 0 (the default) asks for none. Asking for more witnesses than are named is a
    policy nobody can meet, refused up front (an empty combination is an error, never a pass).
    """

    witnesses: tuple[Verifier, ...] = ()
    required: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.required <= len(self.witnesses):
            raise UnusableInput(
                f"witness policy: {self.required} cosignatures required but "
                f"{len(self.witnesses)} witness key(s) given"
            )


NO_WITNESSES = WitnessPolicy()


@dataclass(frozen=True, slots=True)
class Kept:
    """A checkpoint the customer kept (``--since``): its size and root, already verified."""

    size: int
    root: bytes
    leaves: Sequence[bytes] | None = None  # an earlier bundle's leaves: names the first change


@dataclass(slots=True)
class TreeInput:
    origin: str  # <box>/<customer>
    customer: str  # the tree's name (``_gateway`` for the gateway's own)
    first_key: bytes  # the raw Ed25519 public key the tree started with
    entries: bytes  # concatenated 114-byte v2 entry records, in index order
    leaves: Sequence[bytes]  # the leaf hash listed beside each entry
    bodies: Mapping[bytes, bytes]  # body digest -> exact canonical bytes
    checkpoints: Sequence[str]  # signed notes (with any cosignature lines)
    start: int = 0  # leaves dropped by compaction before ``entries``
    start_hashes: Sequence[bytes] = ()  # the compact range of those leaves
    # index -> the content commitment's preimage after its prefix (salt, topic, content), for
    # content still held: hashed in bulk against the entries' commitments
    content: Mapping[int, bytes] = field(default_factory=dict)
    # tree index -> why the content is absent, for logs that know it (the database's view)
    content_known_absent: frozenset[int] = frozenset()


@dataclass(slots=True)
class TreeVerdict:
    origin: str
    customer: str
    size: int = 0  # leaves in the tree (start + entries)
    start: int = 0
    covered: int = 0  # leaves covered by the largest verified checkpoint
    checkpoints: int = 0  # verified checkpoints
    keys: list[str] = field(default_factory=list)  # fingerprints of the key sequence
    root: bytes = EMPTY_ROOT
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)  # the verified checkpoints, largest last

    @property
    def code(self) -> int:
        return OK if self.problem is None else self.problem.code

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, code: int, index: int, what: str, expected: str, found: str) -> None:
        if self.problem is None:
            self.problem = Problem(code, index, what, expected, found)


def _short(value: bytes) -> str:
    return value.hex()[:16] + "…"


Record = tuple[int, int, int, bytes, bytes, int, bytes]  # version, index, at, body, src, flag, c


def _entries(data: TreeInput, verdict: TreeVerdict) -> list[Record]:
    """Parse and check the entry records; returns those before the first problem.

    The common case is checked in bulk (C-level slicing and list comparison); only a log that
    fails is walked entry by entry to name the first bad one."""
    blob = data.entries
    if len(blob) % ENTRY_SIZE:
        raise UnusableInput(
            f"entries: {len(blob)} bytes is not a whole number of {ENTRY_SIZE}-byte entries"
        )
    records: list[Record] = list(ENTRY_LAYOUT.iter_unpack(blob))
    n = len(records)
    start = data.start
    flags = blob[81::ENTRY_SIZE]
    bulk_ok = (
        blob[0::ENTRY_SIZE] == bytes([ENTRY_VERSION]) * n
        and not flags.translate(None, b"\x00\x01")
        and [r[1] for r in records] == list(range(start, start + n))
        and all(records[p][6] == _ZERO32 for p in _positions(flags, 0))
    )
    if bulk_ok:
        return records
    for pos, (version, index, _at, _body, _src, flag, commitment) in enumerate(records):
        expected = start + pos
        if index > expected:
            verdict.fail(TAMPERED, expected, "entry missing", f"index {expected}", f"index {index}")
        elif index < expected:
            verdict.fail(  # the entry claiming an index already taken is the bad one
                TAMPERED,
                index,
                "entry inserted, repeated or out of order",
                f"index {expected}",
                f"index {index}",
            )
        elif version != ENTRY_VERSION or flag > 1 or (flag == 0 and commitment != _ZERO32):
            verdict.fail(
                TAMPERED,
                index,
                "entry bytes not in layout v2",
                "version 2, flag 0 or 1",
                f"version {version}, flag {flag}",
            )
        else:
            continue
        return records[:pos]
    return records


def _positions(column: bytes, value: int) -> list[int]:
    """Positions in a one-byte-per-entry column holding ``value``."""
    found = []
    at = column.find(value)
    while at >= 0:
        found.append(at)
        at = column.find(value, at + 1)
    return found


def _check_leaves(data: TreeInput, count: int, verdict: TreeVerdict) -> None:
    blob = data.entries
    sha = hashlib.sha256
    computed = [
        sha(b"\x00" + blob[i : i + ENTRY_SIZE]).digest()
        for i in range(0, count * ENTRY_SIZE, ENTRY_SIZE)
    ]
    listed = data.leaves
    if len(listed) >= count and computed == list(listed[:count]):
        return
    for pos, leaf in enumerate(computed):
        if pos >= len(listed) or listed[pos] != leaf:
            verdict.fail(
                TAMPERED,
                data.start + pos,
                "entry bytes do not hash to the leaf listed for it",
                _short(listed[pos]) if pos < len(listed) else "a listed leaf",
                _short(leaf),
            )
            return


@dataclass(slots=True)
class _Rotation:
    index: int
    old: bytes
    new: bytes


def _bodies(
    data: TreeInput, records: list[Record], verdict: TreeVerdict
) -> dict[bytes, dict[str, object]]:
    """Check every distinct body once; a problem is named at its first entry."""
    docs: dict[bytes, dict[str, object]] = {}
    bad: dict[bytes, tuple[str, str, str]] = {}
    for digest in {r[3] for r in records}:
        raw = data.bodies.get(digest)
        if raw is None:
            bad[digest] = ("body missing", _short(digest), "none")
            continue
        if body_digest(raw) != digest:
            bad[digest] = ("body changed", _short(digest), _short(body_digest(raw)))
            continue
        if not is_canonical(raw):
            bad[digest] = ("body not in RFC 8785 canonical form", "canonical JSON", "other")
            continue
        doc = orjson.loads(raw)
        if not isinstance(doc, dict):
            bad[digest] = ("body is not a JSON object", "an object", type(doc).__name__)
            continue
        owner = doc.get("customer") or GATEWAY_CHAIN
        if owner != data.customer:
            bad[digest] = ("body of another log", data.customer, str(owner))
            continue
        docs[digest] = doc
    if bad:
        first = next(r for r in records if r[3] in bad)
        verdict.fail(TAMPERED, first[1], *bad[first[3]])
    return docs


def _params(doc: Mapping[str, object]) -> Mapping[str, object]:
    params = doc.get("reason_params")
    return params if isinstance(params, dict) else {}


def _rotations(
    data: TreeInput,
    records: list[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: TreeVerdict,
) -> list[_Rotation]:
    found: list[_Rotation] = []
    current = data.first_key
    rotation_bodies = {d for d, doc in docs.items() if doc.get("kind") == "key_rotation"}
    if not rotation_bodies:
        return found
    for _v, index, _at, body, _src, _flag, _c in records:
        if body not in rotation_bodies:
            continue
        params = _params(docs[body])
        try:
            old = bytes.fromhex(str(params["old"]))
            new = bytes.fromhex(str(params["new"]))
            sig_old = bytes.fromhex(str(params["sig_old"]))
            sig_new = bytes.fromhex(str(params["sig_new"]))
        except (KeyError, ValueError):
            verdict.fail(
                TAMPERED,
                index,
                "rotation record incomplete",
                "old, new and both signatures",
                "some missing",
            )
            break
        message = rotation_message_v2(data.origin, index, old, new)
        if old != current:
            verdict.fail(
                TAMPERED,
                index,
                "rotation from a key that is not the current one",
                fingerprint(key_id_of(current)),
                fingerprint(key_id_of(old)),
            )
            break
        if not PublicKey(old).verify(sig_old, message) or not PublicKey(new).verify(
            sig_new, message
        ):
            verdict.fail(
                TAMPERED,
                index,
                "rotation record not signed by both keys",
                "two valid signatures",
                "an invalid one",
            )
            break
        found.append(_Rotation(index, old, new))
        current = new
    return found


def _key_at(first: bytes, rotations: Sequence[_Rotation], size: int) -> bytes:
    """The key allowed to sign a checkpoint of ``size``: rotations at indexes below it apply."""
    key = first
    for r in rotations:
        if r.index < size:
            key = r.new
    return key


def check_tree(
    data: TreeInput,
    pinned: PublicKey,
    *,
    witnesses: WitnessPolicy = NO_WITNESSES,
    since: Kept | None = None,
) -> TreeVerdict:
    """Verify ``data`` against the key the customer trusts; the first problem is reported."""
    verdict = TreeVerdict(data.origin, data.customer, start=data.start)
    records = _entries(data, verdict)
    count = len(records)
    _check_leaves(data, count, verdict)
    docs = _bodies(data, records, verdict)
    rotations = _rotations(data, records, docs, verdict)
    sequence = [data.first_key] + [r.new for r in rotations]
    verdict.keys = [fingerprint(key_id_of(k)) for k in sequence]
    if pinned.raw not in sequence:
        verdict.fail(
            TAMPERED,
            data.start,
            "the log is signed by a key not linked to the key you trust (replaced key)",
            pinned.fingerprint,
            " → ".join(verdict.keys),
        )
    limit = count if verdict.problem is None else min(count, verdict.problem.index - data.start)
    leaves = list(data.leaves[:limit])
    size = data.start + len(leaves)
    verdict.size = data.start + count
    try:
        levels = levels_of(leaves, data.start, data.start_hashes)
    except IndexError as exc:
        raise UnusableInput("the compacted prefix's hashes do not match its size") from exc
    _checkpoints(data, levels, size, sequence[0], rotations, witnesses, verdict)
    check_content(data, records, docs, verdict)
    if since is not None:
        _since(levels, size, since, verdict)
    if verdict.problem is None and verdict.covered < verdict.size:
        verdict.fail(
            INCOMPLETE,
            verdict.covered,
            f"entries {verdict.covered}..{verdict.size - 1} are not covered by a verified checkpoint",
            f"a checkpoint of size {verdict.size}",
            f"the largest verified covers {verdict.covered}",
        )
    return verdict


def _checkpoints(  # noqa: PLR0917 -- one call site, the checker's own steps
    data: TreeInput,
    levels: Levels,
    size: int,
    first_key: bytes,
    rotations: Sequence[_Rotation],
    witnesses: WitnessPolicy,
    verdict: TreeVerdict,
) -> None:
    parsed: list[tuple[int, str, Checkpoint]] = []
    for note in data.checkpoints:
        text = note[: note.find("\n\n") + 1] if "\n\n" in note else note
        try:
            cp = Checkpoint.parse(text)
        except NoteError as exc:
            verdict.fail(
                TAMPERED, data.start, "checkpoint unreadable", "a C2SP checkpoint", str(exc)[:80]
            )
            return
        parsed.append((cp.size, note, cp))
    parsed.sort(key=lambda p: p[0])
    witness_names = {w.name for w in witnesses.witnesses}
    for cp_size, note, cp in parsed:
        last = max(cp_size - 1, 0)
        if cp.origin != data.origin:
            verdict.fail(
                TAMPERED, last, "checkpoint of another log (foreign origin)", data.origin, cp.origin
            )
            return
        key = _key_at(first_key, rotations, cp_size)
        box = Verifier(data.origin, ED25519_TYPE, key)
        try:
            opened = open_note(note, [box, *witnesses.witnesses])
        except NoteError as exc:
            verdict.fail(
                TAMPERED,
                last,
                f"checkpoint of size {cp_size} not signed by the key valid there",
                fingerprint(key_id_of(key)),
                str(exc)[:120],
            )
            return
        if box not in opened.verified:
            verdict.fail(
                TAMPERED,
                last,
                f"checkpoint of size {cp_size} not signed by the log's key",
                fingerprint(key_id_of(key)),
                "witness signatures only",
            )
            return
        if cp_size > size:
            verdict.fail(
                TAMPERED,
                size,
                f"a checkpoint covers {cp_size} entries, the log holds {size} (truncated, or entries deleted)",
                f"{cp_size} entries",
                f"{size}",
            )
            return
        if cp_size <= data.start:
            continue  # covers only the compacted part: its root cannot be recomputed here
        root = prefix_root(levels, cp_size)
        if root != cp.root:
            prior = verdict.covered if verdict.covered >= data.start else data.start
            verdict.fail(
                TAMPERED,
                prior,
                f"checkpoint of size {cp_size} does not match entries {prior}..{cp_size - 1} (root hash)",
                _short(cp.root),
                _short(root),
            )
            return
        cosigned = {v.name for v in opened.verified if v.name in witness_names}
        if len(cosigned) < witnesses.required:
            continue  # verified, but not witnessed enough to count as coverage
        verdict.checkpoints += 1
        verdict.covered = max(verdict.covered, cp_size)
        verdict.root = root
        verdict.notes.append(note)


def _since(levels: Levels, size: int, kept: Kept, verdict: TreeVerdict) -> None:
    """RFC 6962 consistency between the checkpoint the customer kept and this log."""
    if kept.size > size:
        verdict.fail(
            TAMPERED,
            size,
            f"the log was cut back: you kept a checkpoint of {kept.size} entries, this log ends at {size}",
            f"{kept.size} entries",
            f"{size}",
        )
        return
    try:
        new_root = prefix_root(levels, size)
        proof = [] if kept.size in (0, size) else consistency_from(levels, kept.size, size)
        verify_consistency(kept.size, size, kept.root, new_root, proof)
    except ProofError as exc:
        index = 0
        if kept.leaves is not None:
            mine = levels[0]
            index = next(
                (i for i, leaf in enumerate(kept.leaves) if i >= len(mine) or mine[i] != leaf),
                kept.size,
            )
        verdict.fail(
            TAMPERED,
            index,
            f"history rewritten: this log does not extend the checkpoint of {kept.size} entries you kept ({exc})",
            _short(kept.root),
            _short(prefix_root(levels, kept.size)),
        )
