"""Personal content in a proof: what is held matches its commitment, what is gone was erased.

An entry commits to its content (payload and topic) through a salted hash; the content itself
travels beside the entry only while the box holds it. Held content must reproduce the
commitment; content an entry committed to may be absent only when a later entry of the same
log says why: an erasure of the whole customer or of the entry's device, or a retention run
whose content cut-off is after the entry's time (``gateway/log/SPEC.md`` §5).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter

from gateway.log.chain import _CONTENT
from gateway.log.leaf import ENTRY_SIZE, Record, TreeInput
from gateway.log.verdict import TAMPERED, TreeVerdict

__all__ = ["check_content"]


def _short(value: bytes) -> str:
    return value.hex()[:16] + "…"


def _params(doc: Mapping[str, object]) -> Mapping[str, object]:
    params = doc.get("reason_params")
    return params if isinstance(params, dict) else {}


def _all_held_match(data: TreeInput, count: int) -> bool:
    """Bulk: every content given belongs to one of the first ``count`` entries and hashes to
    that entry's commitment, and no committed entry lacks its content. False sends the caller
    to the precise walk, which names the entry."""
    held, start = data.content, data.start
    view = memoryview(data.entries)[: count * ENTRY_SIZE]
    if view[81::ENTRY_SIZE].tobytes().count(1) != len(held):
        return False
    if not held:
        return True
    positions = list(held) if not start else [i - start for i in held]
    if min(positions) < 0 or max(positions) >= count:
        return False  # a negative position would pick another entry's commitment
    # Content at a position whose flag is 0 fails the comparison below: that entry's
    # commitment field is 32 zero bytes (checked with the entries), no hash's output.
    commitments = list(map(itemgetter(0), _COMMITMENT.iter_unpack(view)))
    prefixed = hashlib.sha256(_CONTENT).copy
    computed: list[bytes] = []
    add = computed.append
    for tail in held.values():
        h = prefixed()
        h.update(tail)
        add(h.digest())
    return computed == list(map(commitments.__getitem__, positions))


_COMMITMENT = struct.Struct("82x32s")  # an entry's commitment field, its last 32 bytes


def check_content(
    data: TreeInput,
    records: Sequence[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: TreeVerdict,
) -> None:
    """Held content matches its commitment; absent content is covered by a signed erasure.

    ``records`` are the entries the checker accepted, at indexes ``data.start`` onwards without
    gaps, so an entry is found by its position: no dict per entry."""
    start, count = data.start, len(records)
    if _all_held_match(data, count):
        return  # the common case, checked in bulk: nothing absent, nothing changed

    def committed(index: int) -> Record | None:
        pos = index - start
        return records[pos] if 0 <= pos < count and records[pos][5] else None

    held = data.content
    if held:
        # One pass; each hash object copied from one that already took the prefix (no
        # concatenation of prefix and record per entry).
        prefixed = hashlib.sha256(_CONTENT)
        bad: list[int] = []
        for i, tail in held.items():
            entry = committed(i)
            if entry is None:
                bad.append(i)
                continue
            h = prefixed.copy()
            h.update(tail)
            if h.digest() != entry[6]:
                bad.append(i)
        if bad:
            i = min(bad)
            entry = committed(i)
            if entry is not None:
                verdict.fail(
                    TAMPERED,
                    i,
                    "content does not match its commitment",
                    _short(entry[6]),
                    "other content",
                )
            else:
                verdict.fail(
                    TAMPERED,
                    i,
                    "content given for an entry that committed to none",
                    "none",
                    "content",
                )
            return
    known_absent = data.content_known_absent
    absent = [r for r in records if r[5] and r[1] not in held and r[1] not in known_absent]
    if not absent or data.moved:
        return
    erasures: list[tuple[int, str]] = []
    retentions: list[tuple[int, int]] = []
    for digest, doc in docs.items():
        kind = doc.get("kind")
        if kind not in ("erasure", "retention"):
            continue
        for r in records:
            if r[3] != digest:
                continue
            if kind == "erasure":
                erasures.append((r[1], str(doc.get("subject") or "")))
            else:
                before = _params(doc).get("content_before")
                try:
                    cut = int(datetime.fromisoformat(str(before)).timestamp() * 1_000_000)
                except ValueError:
                    continue
                retentions.append((r[1], cut))
    for _v, index, at, body, _src, _flag, _c in sorted(absent, key=lambda r: r[1]):
        device = (docs.get(body) or {}).get("device")
        subjects = {data.customer, f"{data.customer}/{device}"}
        if any(e > index and subject in subjects for e, subject in erasures):
            continue
        if any(r > index and at < cut for r, cut in retentions):
            continue
        verdict.fail(
            TAMPERED,
            index,
            "content removed without a signed erasure or retention entry covering it",
            "the content, or an erasure after it",
            "neither",
        )
        return
