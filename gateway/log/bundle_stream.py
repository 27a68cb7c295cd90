"""A v3 bundle proven good while it is read, in memory bounded by one line, not by its size.

``einblick verify`` of a year's bundle (31.5 M entries, gigabytes) must not hold the year: this
module walks the file with a cursor per kind of line (``gateway.log.bundle_file``) -- the
entries, the content and the checkpoint lines -- and checks each ``entries`` line (at most
1,024 entries) as it comes:

- the entries' layout and indexes, their leaf hashes against the listed ones, the bodies
  they name (each checked once, when first named), the held content against the entries'
  commitments (content is read in index order beside its entries);
- the leaves are folded into the tree's right edge (``merkle.RightEdge``: one hash per set
  bit of the size), and each checkpoint is checked when the tree reaches its size: the origin
  and key valid there, the signature, the witness policy, the root.

What the file holds apart from the bulk lines -- header, texts, bodies, names documents --
is read first (pass 0) and kept: it is what a verifier needs per entry, and it grows with
distinct explanations, not with entries. The few entries the checker needs again after the
walk (rotation, handover, erasure and retention records, each body's first use, the last use
of a body whose names document was erased) are kept as records and handed to the checker's
own functions (``check_handovers``, ``check_rotations``, ``check_names``), so their rules are
written once. Absent content (after an erasure) is checked by a second walk once every
erasure is known.

This reader only ever *proves*: any doubt -- a problem, an unusual but valid layout (content
out of index order, a v2 file), anything it does not handle -- is :class:`NotProven`, and the
caller runs the whole-file checker (``gateway.log.proof.check_tree``), which names the first
bad entry exactly as before. So a verdict from here is always OK, and every other verdict
comes from the one checker.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import itemgetter

import orjson

from gateway.log.bundle_file import (
    Content,
    Meta,
    NotProven,
    Opener,
    bulk_data,
    checkpoint_notes,
    content_lines,
    lines_of,
    read_meta,
)
from gateway.log.chain import _CONTENT, GATEWAY_CHAIN, body_digest
from gateway.log.handovers import HANDED_OVER, HANDING_OVER, Handover, check_handovers
from gateway.log.jcs import is_canonical
from gateway.log.keys import PublicKey, fingerprint, key_id_of
from gateway.log.leaf import ENTRY_SIZE, Record, Records, TreeInput
from gateway.log.merkle import RightEdge, leaf_hashes
from gateway.log.names import check_names
from gateway.log.note import ED25519_TYPE, Checkpoint, NoteError, Verifier, open_note
from gateway.log.proof import well_formed
from gateway.log.rotations import check_rotations
from gateway.log.verdict import NO_WITNESSES, Kept, TreeVerdict, UnusableInput, WitnessPolicy

__all__ = ["prove_bundle"]

_COMMITMENT = struct.Struct("82x32s")
# Records the checker reads again after the walk, by their bodies' kind (and reason).
_RARE_KINDS = frozenset({"key_rotation", "erasure", "retention"})


@dataclass(slots=True)
class _Walk:
    """The state of one walk over the entries: bodies seen, records kept, the tree so far."""

    meta: Meta
    tree: TreeInput  # metadata only (entries empty): what the checker's functions read
    docs: dict[bytes, dict[str, object]] = field(default_factory=dict)  # bodies used, checked
    kept: dict[int, Record] = field(default_factory=dict)  # index -> record, read again later
    rare: frozenset[bytes] = frozenset()  # bodies whose entries are kept
    neighbours: frozenset[bytes] = frozenset()  # handover bodies: keep the entries beside too
    tracked: frozenset[bytes] = frozenset()  # bodies whose last use is kept (names erased)
    previous: Record | None = None  # the last entry of the previous line
    keep_next: bool = False
    absent: bool = False  # some committed content is not held (a second walk decides)


def _classify(meta: Meta) -> tuple[frozenset[bytes], frozenset[bytes], frozenset[bytes]]:
    """(bodies whose entries are kept, handover bodies, bodies whose names doc is absent)."""
    rare: set[bytes] = set()
    handover: set[bytes] = set()
    tracked: set[bytes] = set()
    for digest, raw in meta.bodies.items():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # refused when an entry names it
        if not isinstance(doc, dict):
            continue
        kind = doc.get("kind")
        if kind in _RARE_KINDS:
            rare.add(digest)
        elif kind == "gateway_event" and doc.get("reason") in (HANDING_OVER, HANDED_OVER):
            rare.add(digest)
            handover.add(digest)
        ref = doc.get("names")
        if isinstance(ref, str):
            try:
                if bytes.fromhex(ref) not in meta.names:
                    tracked.add(digest)
            except ValueError:
                continue  # refused by check_names
    return frozenset(rare), frozenset(handover), frozenset(tracked)


def _body(walk: _Walk, digest: bytes) -> None:
    """Check a body when an entry first names it, as ``proof._bodies`` does (doubt if bad)."""
    raw = walk.meta.bodies.get(digest)
    if raw is None or body_digest(raw) != digest or not is_canonical(raw):
        raise NotProven("a body missing, changed or not canonical")
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or (doc.get("customer") or GATEWAY_CHAIN) != walk.tree.customer:
        raise NotProven("a body not an object of this log")
    for lang in ("text_de", "text_en"):
        ref = doc.get(lang)
        if isinstance(ref, str) and walk.meta.texts.get(ref, "missing"):
            raise NotProven("an explanation text changed or missing")
    walk.docs[digest] = doc


def _keep(walk: _Walk, records: Records, first: int, steps: list[tuple[int, bytes, bytes]]) -> None:
    """Keep the records the checker reads again (see the module docstring); the rotation
    and handover records among them, as claimed, go to ``steps``."""
    column = records.column(17, 32)
    present = set(column)
    for digest in present - walk.docs.keys():
        _body(walk, digest)
        pos = column.index(digest)
        walk.kept[first + pos] = records[pos]
    if walk.keep_next and records:
        walk.kept[first] = records[0]
        walk.keep_next = False
    for digest in present & walk.tracked:
        pos = len(column) - 1 - column[::-1].index(digest)
        walk.kept[first + pos] = records[pos]
    if present & walk.rare:
        for pos, digest in enumerate(column):
            if digest not in walk.rare:
                continue
            walk.kept[first + pos] = records[pos]
            step = _step(walk, records[pos])
            if step is not None:
                steps.append(step)
            if digest in walk.neighbours:
                if pos:
                    walk.kept[first + pos - 1] = records[pos - 1]
                elif walk.previous is not None:
                    walk.kept[first - 1] = walk.previous
                if pos + 1 < len(records):
                    walk.kept[first + pos + 1] = records[pos + 1]
                else:
                    walk.keep_next = True
    if records:
        walk.previous = records[len(records) - 1]


def _held(walk: _Walk, blob: bytes, first: int, k: int, content: Content) -> None:
    """The held content of entries ``first``..``first + k - 1`` matches their commitments."""
    indexes, records = content.take(first + k)
    committed = k - blob[81::ENTRY_SIZE].count(0)
    if len(indexes) != committed:
        walk.absent = True  # or content for an entry without a commitment: doubt below
    if not indexes:
        return
    if indexes[0] < first:
        raise NotProven("content for an entry before this line")
    commitments = list(map(itemgetter(0), _COMMITMENT.iter_unpack(blob)))
    flags = blob[81::ENTRY_SIZE]
    if len(indexes) == committed and list(compress(range(first, first + k), flags)) == indexes:
        wanted = list(compress(commitments, flags))  # the usual case: every one held, in C
    else:
        # An entry without a commitment has 32 zero bytes there (checked with the layout),
        # which no hash matches: content given for it fails below too.
        wanted = [commitments[i - first] for i in indexes]
    prefixed = hashlib.sha256(_CONTENT).copy
    computed: list[bytes] = []
    add = computed.append
    for record in records:
        h = prefixed()
        h.update(record)
        add(h.digest())
    if computed != wanted:
        raise NotProven("content does not match its commitment, or has none to match")


@dataclass(slots=True)
class _Provisional:
    """Rotations and handovers as their bodies claim them, used while walking (the keys and
    origins checkpoints are checked under); proven by the checker's functions afterwards."""

    claims: list[tuple[int, str]]  # (handover size, origin before it), by size
    steps: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (index, old, new)

    def origin_at(self, final: str, size: int) -> str:
        for index, before in self.claims:
            if size <= index:
                return before
        return final

    def key_at(self, first: bytes, size: int) -> bytes:
        key = first
        for index, _old, new in self.steps:
            if index < size:
                key = new
        return key


def _claims(meta: Meta) -> list[tuple[int, str]]:
    claims = []
    for raw in meta.bodies.values():
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and doc.get("reason") == HANDED_OVER:
            params = doc.get("reason_params")
            if not isinstance(params, dict):
                raise NotProven("a handover record without parameters")
            claims.append((int(str(params["size"])), str(params["from"])))
    return sorted(claims)


def _step(walk: _Walk, record: Record) -> tuple[int, bytes, bytes] | None:
    doc = walk.docs[record[3]]
    is_step = doc.get("kind") == "key_rotation" or doc.get("reason") == HANDED_OVER
    if not is_step:
        return None
    params = doc.get("reason_params")
    if not isinstance(params, dict):
        raise NotProven("a rotation record without parameters")
    return record[1], bytes.fromhex(str(params["old"])), bytes.fromhex(str(params["new"]))


@dataclass(slots=True)
class _Checker:
    """Checkpoints checked when the walk reaches their size (see ``proof._checkpoints``)."""

    walk: _Walk
    witnesses: WitnessPolicy
    provisional: _Provisional
    notes: Iterator[tuple[Checkpoint, str]]
    verdict: TreeVerdict
    pending: tuple[Checkpoint, str] | None = None
    roots: dict[int, bytes | None] = field(default_factory=dict)  # other sizes -> root
    wanted: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.pending = next(self.notes, None)

    def next_stop(self) -> int | None:
        """The next size at which the walk must stop and hand over the root."""
        sizes = [s for s in self.wanted if s not in self.roots]
        if self.pending is not None:
            sizes.append(self.pending[0].size)
        return min(sizes, default=None)

    def at(self, size: int, root: bytes | None) -> None:
        if size in self.wanted:
            self.roots[size] = root
        while self.pending is not None and self.pending[0].size == size:
            self._check(*self.pending, root)
            self.pending = next(self.notes, None)

    def _check(self, cp: Checkpoint, note: str, root: bytes | None) -> None:
        tree = self.walk.tree
        origin = self.provisional.origin_at(tree.origin, cp.size)
        if cp.origin != origin:
            raise NotProven("a checkpoint of another origin")
        box = Verifier(origin, ED25519_TYPE, self.provisional.key_at(tree.first_key, cp.size))
        try:
            opened = open_note(note, [box, *self.witnesses.witnesses])
        except NoteError as exc:
            raise NotProven("a checkpoint not signed by the key valid there") from exc
        if box not in opened.verified:
            raise NotProven("a checkpoint signed by witnesses only")
        if cp.size <= tree.start:
            return  # covers only the compacted part (as the checker skips it)
        if root is None or cp.root != root:
            raise NotProven("a checkpoint's root differs")
        names = {w.name for w in self.witnesses.witnesses}
        if len({v.name for v in opened.verified if v.name in names}) < self.witnesses.required:
            return  # verified, not witnessed enough to count
        self.verdict.checkpoints += 1
        self.verdict.covered = max(self.verdict.covered, cp.size)
        self.verdict.root = root
        self.verdict.notes[:] = [note]


def _walk(
    opener: Opener,
    walk: _Walk,
    checker: _Checker,
    edge: RightEdge,
) -> int:
    """Check every entries line; returns the tree size reached."""
    meta = walk.meta
    size = walk.tree.start
    while (stop := checker.next_stop()) is not None and stop <= size:
        # checkpoints of the compacted part are checked but have no root here (as the
        # checker skips theirs); other sizes there have none (a kept one: doubt, later)
        checker.at(stop, edge.root() if stop == size else None)
    content = Content(content_lines(opener, meta))
    for number, raw in lines_of(opener, meta, "entries"):
        first, decoded = bulk_data(number, raw)
        if first != size or len(decoded) % (ENTRY_SIZE + 32):
            raise NotProven("entries lines with a gap, or a record cut off")
        k = len(decoded) // (ENTRY_SIZE + 32)
        blob = decoded[: k * ENTRY_SIZE]
        if not well_formed(blob, k, first):
            raise NotProven("an entry not in layout v2 at its index")
        leaves = leaf_hashes(blob, ENTRY_SIZE, k)
        if b"".join(leaves) != decoded[k * ENTRY_SIZE :]:
            raise NotProven("an entry does not hash to its listed leaf")
        _keep(walk, Records(blob, k), first, checker.provisional.steps)
        _held(walk, blob, first, k, content)
        pos = 0
        while True:  # the leaves into the right edge, stopping at each size asked for
            stop = checker.next_stop()
            if stop is None or stop > first + k:
                edge.extend(leaves[pos:])
                break
            if stop < edge.size:
                raise NotProven("a size asked for was passed")
            edge.extend(leaves[pos : stop - first])
            pos = stop - first
            checker.at(stop, edge.root())
        size = first + k
    if not content.done():
        raise NotProven("content for entries the bundle does not hold")
    if checker.pending is not None or checker.next_stop() is not None:
        raise NotProven("a checkpoint (or a kept size) beyond the entries given")
    return size


def _absent_covered(opener: Opener, walk: _Walk) -> None:
    """Second walk, only when content is absent: each absent entry is covered by a signed
    erasure of its subject or a retention run after it (as ``absence.check_content``)."""
    erasures: list[tuple[int, str]] = []
    retentions: list[tuple[int, int]] = []
    for index, record in sorted(walk.kept.items()):
        doc = walk.docs[record[3]]
        if doc.get("kind") == "erasure":
            erasures.append((index, str(doc.get("subject") or "")))
        elif doc.get("kind") == "retention":
            params = doc.get("reason_params")
            before = params.get("content_before") if isinstance(params, dict) else None
            try:
                cut = int(datetime.fromisoformat(str(before)).timestamp() * 1_000_000)
            except ValueError:
                continue
            retentions.append((index, cut))
    customer = walk.tree.customer
    content = Content(content_lines(opener, walk.meta))
    for number, raw in lines_of(opener, walk.meta, "entries"):
        first, decoded = bulk_data(number, raw)
        if first is None:
            raise NotProven(f"line {number}: not an entries line")
        k = len(decoded) // (ENTRY_SIZE + 32)
        held = set(content.take(first + k)[0])
        for _v, index, at, body, _src, flag, _c in Records(decoded[: k * ENTRY_SIZE], k):
            if not flag or index in held:
                continue
            device = walk.docs[body].get("device")
            subjects = {customer, f"{customer}/{device}"}
            if any(e > index and s in subjects for e, s in erasures):
                continue
            if any(r > index and at < cut for r, cut in retentions):
                continue
            raise NotProven("content removed without an erasure covering it")


def prove_bundle(
    opener: Opener,
    pinned: PublicKey,
    *,
    witnesses: WitnessPolicy = NO_WITNESSES,
    kept: Callable[[TreeInput], Kept] | None = None,
) -> TreeVerdict:
    """The OK verdict of a v3 bundle read through ``opener``; raises :class:`NotProven` at
    the first doubt (the caller then asks the whole-file checker, which names the problem).
    ``kept`` reads what the customer kept (``--since``), given the bundle's header and bodies
    (a kept checkpoint's origin may be one a handover record names)."""
    try:
        return _prove(opener, pinned, witnesses, kept)
    except (
        UnusableInput,  # a line the whole-file reader refuses too, naming it
        NoteError,
        ValueError,  # JSON, hex, base64, UTF-8 or a number a hostile file got wrong
        LookupError,
        TypeError,
        ArithmeticError,
        struct.error,
    ) as exc:
        raise NotProven(str(exc)) from exc


def _prove(
    opener: Opener,
    pinned: PublicKey,
    witnesses: WitnessPolicy,
    kept_of: Callable[[TreeInput], Kept] | None,
) -> TreeVerdict:
    with opener() as reader:
        meta = read_meta(reader)
    header = meta.header
    start = header.start
    if len(header.start_hashes) != start.bit_count():
        raise NotProven("start_hashes do not match start")
    tree = TreeInput(
        origin=header.origin,
        customer=header.customer,
        first_key=header.key,
        entries=b"",
        leaves=(),
        bodies=meta.bodies,
        checkpoints=(),
        start=start,
        start_hashes=list(header.start_hashes),
        names=meta.names,
    )
    kept = None if kept_of is None else kept_of(tree)
    rare, handover, tracked = _classify(meta)
    walk = _Walk(meta, tree, rare=rare, neighbours=handover, tracked=tracked)
    provisional = _Provisional(_claims(meta))
    verdict = TreeVerdict(tree.origin, tree.customer, start=start)
    checker = _Checker(walk, witnesses, provisional, checkpoint_notes(opener, meta), verdict)
    checker.wanted = frozenset(
        {s for s, _ in provisional.claims} | ({kept.size} if kept is not None else set())
    )
    edge = RightEdge(start, tree.start_hashes)
    size = _walk(opener, walk, checker, edge)
    verdict.size = size
    if walk.absent:
        _absent_covered(opener, walk)
    records = [walk.kept[i] for i in sorted(walk.kept)]
    check = TreeVerdict(tree.origin, tree.customer, start=start)
    handovers = check_handovers(tree, records, walk.docs, check)
    _same_handovers(handovers, provisional, checker)
    rotations = check_rotations(tree, records, walk.docs, check, handovers)
    if [(r.index, r.old, r.new) for r in rotations] != provisional.steps:
        raise NotProven("rotation records differ from what their bodies claim")
    check_names(tree, records, walk.docs, check)
    if check.problem is not None:
        raise NotProven(str(check.problem))
    sequence = [tree.first_key] + [r.new for r in rotations]
    if pinned.raw not in sequence:
        raise NotProven("the pinned key is not in the log's key sequence")
    verdict.keys = [fingerprint(key_id_of(k)) for k in sequence]
    if kept is not None and kept.size and checker.roots.get(kept.size) != kept.root:
        raise NotProven("this log does not extend the kept checkpoint")
    if verdict.covered < size:
        raise NotProven("entries not covered by a verified checkpoint")
    return verdict


def _same_handovers(
    handovers: list[Handover], provisional: _Provisional, checker: _Checker
) -> None:
    """The proven handovers are the claimed ones, and each continues the tree it names."""
    if [(h.index, h.old_origin) for h in handovers] != provisional.claims:
        raise NotProven("handover records differ from what their bodies claim")
    for h in handovers:
        if checker.roots.get(h.size) != h.root:
            raise NotProven("a handover record's root differs")
