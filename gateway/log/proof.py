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
3. rotation records (``key_rotation`` bodies, ``gateway.log.rotations``) are signed by the
   outgoing and the incoming key over (origin, index, old, new) and continue the key sequence that starts at ``first_key``;
   the pinned key must be one of that sequence (else: a replaced key);
4. each checkpoint is a C2SP note for this origin (another origin: a foreign checkpoint),
   signed by the key valid at its size (a retired key signs nothing later), with the witness
   policy's cosignatures, and its root equals the root recomputed from the entries (a
   checkpoint covering more entries than given: a truncated log);
5. personal content given beside an entry matches its commitment, and content an entry
   committed to but that is absent is covered by a signed erasure or retention entry after it;
   the same for the names documents version 2 bodies commit to (``gateway.log.names``): one
   given matches its commitment, one absent is covered by a signed erasure of its subject;
6. every entry is covered by a verified checkpoint — else the verdict is *incomplete*.

The verdict and its codes are ``gateway.log.verdict``'s; the key sequence of step 3 is
``gateway.log.rotations``', the content of step 5 ``gateway.log.absence``'s.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

import orjson

from gateway.log.absence import check_content
from gateway.log.chain import GATEWAY_CHAIN, body_digest
from gateway.log.handovers import Handover, check_handovers, check_roots, origin_at
from gateway.log.jcs import is_canonical
from gateway.log.keys import PublicKey, fingerprint, key_id_of
from gateway.log.leaf import ENTRY_SIZE, ENTRY_VERSION, Hashes, Records, TreeInput
from gateway.log.levels import Levels, consistency_from, levels_of, prefix_root
from gateway.log.merkle import ProofError, leaf_hashes, verify_consistency
from gateway.log.names import check_names
from gateway.log.note import (
    ED25519_TYPE,
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
)
from gateway.log.rotations import Rotation, check_rotations, key_at
from gateway.log.verdict import (
    INCOMPLETE,
    NO_WITNESSES,
    TAMPERED,
    Kept,
    TreeVerdict,
    UnusableInput,
    WitnessPolicy,
)

__all__ = ["check_tree", "well_formed"]

_ZERO32 = bytes(32)


def _short(value: bytes) -> str:
    return value.hex()[:16] + "…"


def _entries(data: TreeInput, verdict: TreeVerdict) -> Records:
    """Check the entry records; returns those before the first problem.

    The common case is checked in bulk, column by column (strided slices and big-integer
    arithmetic in C, nothing per entry in Python); only a log that fails is walked entry by
    entry to name the first bad one."""
    blob = data.entries
    if len(blob) % ENTRY_SIZE:
        raise UnusableInput(
            f"entries: {len(blob)} bytes is not a whole number of {ENTRY_SIZE}-byte entries"
        )
    n = len(blob) // ENTRY_SIZE
    if well_formed(blob, n, data.start):
        return Records(blob, n)
    records = Records(blob, n)
    start = data.start
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
        return Records(blob, pos)
    return records


def well_formed(blob: bytes, n: int, start: int) -> bool:
    """Every entry has version 2, index ``start + position``, flag 0 or 1, and 32 zero bytes
    after a 0 flag — checked one byte column at a time (``blob[k::114]`` is byte ``k`` of every
    entry), so the cost per entry is a few bytes copied in C. Blocks of 1,024 entries keep
    the forty column passes inside the processor's cache on a bundle of millions."""
    view = memoryview(blob)
    for first in range(0, n, _BLOCK):
        count = min(_BLOCK, n - first)
        block = view[first * ENTRY_SIZE : (first + count) * ENTRY_SIZE].tobytes()
        if not _block_well_formed(block, count, start + first):
            return False
    return True


_BLOCK = 1024


def _block_well_formed(blob: bytes, n: int, start: int) -> bool:
    if blob[0::ENTRY_SIZE] != bytes([ENTRY_VERSION]) * n:
        return False
    flags = blob[81::ENTRY_SIZE]
    if flags.translate(None, b"\x00\x01"):
        return False
    # The indexes as they must be, big-endian; byte k of each index is column 1 + k.
    wanted = array("Q", range(start, start + n))
    if sys.byteorder == "little":
        wanted.byteswap()
    expected = wanted.tobytes()
    if any(blob[1 + k :: ENTRY_SIZE] != expected[k::8] for k in range(8)):
        return False
    # OR of the 32 commitment bytes of every entry, one byte per entry, masked to the entries
    # whose flag is 0: any bit left is a non-zero commitment behind a 0 flag.
    ored = 0
    for k in range(32):
        ored |= int.from_bytes(blob[82 + k :: ENTRY_SIZE], "big")
    unflagged = int.from_bytes(flags.translate(_UNFLAGGED), "big")
    return not ored & unflagged


# flag byte -> 0xff where the flag is 0 (no commitment), 0x00 elsewhere
_UNFLAGGED = bytes([0xFF]) + bytes(255)


def _check_leaves(data: TreeInput, count: int, verdict: TreeVerdict) -> list[bytes]:
    """The leaf hash of each of the first ``count`` entries, checked against the listed ones;
    returns the leaves up to the first that does not match."""
    computed = leaf_hashes(data.entries, ENTRY_SIZE, count)
    listed = data.leaves
    if len(listed) >= count:
        if isinstance(listed, Hashes):  # a bundle's: one comparison of the joined hashes
            if listed.blob[: count * 32] == b"".join(computed):
                return computed
        elif computed == list(listed[:count]):
            return computed
    for pos, leaf in enumerate(computed):
        if pos >= len(listed) or listed[pos] != leaf:
            verdict.fail(
                TAMPERED,
                data.start + pos,
                "entry bytes do not hash to the leaf listed for it",
                _short(listed[pos]) if pos < len(listed) else "a listed leaf",
                _short(leaf),
            )
            return computed[:pos]
    return computed


def _bodies(
    data: TreeInput, records: Records, verdict: TreeVerdict
) -> dict[bytes, dict[str, object]]:
    """Check every distinct body once; a problem is named at its first entry."""
    docs: dict[bytes, dict[str, object]] = {}
    bad: dict[bytes, tuple[str, str, str]] = {}
    for digest in set(records.column(17, 32)):
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
    computed = _check_leaves(data, count, verdict)
    docs = _bodies(data, records, verdict)
    handovers = check_handovers(data, records, docs, verdict)
    rotations = check_rotations(data, records, docs, verdict, handovers)
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
    leaves = computed[:limit]  # equal to the listed leaves up to the first problem
    size = data.start + len(leaves)
    verdict.size = data.start + count
    try:
        levels = levels_of(leaves, data.start, data.start_hashes)
    except IndexError as exc:
        raise UnusableInput("the compacted prefix's hashes do not match its size") from exc
    check_roots(handovers, levels, size, verdict)
    _checkpoints(data, levels, size, sequence[0], rotations, witnesses, verdict, handovers)
    check_content(data, records, docs, verdict)
    check_names(data, records, docs, verdict)
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
    rotations: Sequence[Rotation],
    witnesses: WitnessPolicy,
    verdict: TreeVerdict,
    handovers: Sequence[Handover] = (),
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
        origin = origin_at(data.origin, handovers, cp_size)  # before a handover: the old one
        if cp.origin != origin:
            verdict.fail(
                TAMPERED, last, "checkpoint of another log (foreign origin)", origin, cp.origin
            )
            return
        key = key_at(first_key, rotations, cp_size)
        box = Verifier(origin, ED25519_TYPE, key)
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
