"""Personal content in a proof: what is held matches its commitment, what is gone was erased.

An entry commits to its content (payload and topic) through a salted hash; the content itself
travels beside the entry only while the box holds it. Held content must reproduce the
commitment; content an entry committed to may be absent only when a later entry of the same
log says why: an erasure of the whole customer or of the entry's device, or a retention run
whose content cut-off is after the entry's time (``gateway/log/SPEC.md`` §5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gateway.log.chain import _CONTENT

if TYPE_CHECKING:
    from gateway.log.proof import Record, TreeInput

__all__ = ["check_content"]

TAMPERED = 1


class Verdict(Protocol):
    def fail(self, code: int, index: int, what: str, expected: str, found: str) -> None: ...


def _short(value: bytes) -> str:
    return value.hex()[:16] + "…"


def _params(doc: Mapping[str, object]) -> Mapping[str, object]:
    params = doc.get("reason_params")
    return params if isinstance(params, dict) else {}


def check_content(
    data: TreeInput,
    records: list[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: Verdict,
) -> None:
    """Held content matches its commitment; absent content is covered by a signed erasure."""
    committed = {r[1]: r for r in records if r[5]}
    held = data.content
    if held:
        stray = [i for i in held if i not in committed]
        sha = hashlib.sha256
        wrong = [
            i
            for i, tail in held.items()
            if i in committed and sha(_CONTENT + tail).digest() != committed[i][6]
        ]
        bad = sorted(stray + wrong)
        if bad:
            i = bad[0]
            if i in committed:
                verdict.fail(
                    TAMPERED,
                    i,
                    "content does not match its commitment",
                    _short(committed[i][6]),
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
    absent = [
        r for i, r in committed.items() if i not in held and i not in data.content_known_absent
    ]
    if not absent:
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
