"""The personal part of an entry: committed per subject, stored apart, destroyed by forgetting.

Everything in an entry that a device or a person chose -- the field paths shared, altered and
withheld (a device's JSON keys), the reason's parameters of decisions, consent and erasure
entries (a field path, a consent giver's or an erasure requester's name), and the exact German
and English explanation texts (which carry the device's display name, its keys and those
names) -- is the entry's *names document*. The body, which is hashed into the log and kept for
ever, holds only its commitment:

    names_salt       = BLAKE2b-256(key=subject_key, person="einblick/name/v1", "")
    names_commitment = SHA-256("einblick/names/v1\\0" || names_salt || JCS(names_doc))

``subject_key`` is the same per-subject key the content salts and the source commitment derive
from (``gateway.log.chain``): one per (customer, device), and one per customer for the entries
that belong to no device (consent, erasure records). The salt is one per subject, not per entry,
so a subject's identical documents share one commitment and are stored once (dedup within a
subject; never across subjects, so a document guessed for one subject cannot be confirmed
against another's).

Forgetting a subject deletes its key and its names documents. The commitment stays in every
body, so every leaf, root and proof still verifies; without the salt a guessed name, key or text
cannot be confirmed against it (a 256-bit salt under SHA-256), and the clear values are in no
row, no page and no later bundle. The one proof checker (``gateway.log.proof``) applies the
rule: a document given must match its commitment (``names_problem``); one absent must be covered
by a signed erasure entry of its subject after every entry that uses it (``erased_through``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence

from gateway.log.documents import BodyV2, NamesDocument, ShownBody
from gateway.log.jcs import canonical, is_canonical
from gateway.log.leaf import Record, TreeInput
from gateway.log.verdict import TAMPERED, TreeVerdict

__all__ = [
    "NAMES_FIELDS",
    "check_names",
    "erased_through",
    "has_names",
    "joined",
    "names_commitment",
    "names_problem",
    "names_salt",
    "seal_names",
]


_NAME_SALT = b"einblick/name/v1"  # BLAKE2b personalisation: exactly 16 bytes
_NAMES = b"einblick/names/v1\x00"

# The keys a names document may hold (``reason_params`` only for the kinds in
# ``gateway.log.entry.NAMED_PARAMS``); a version 1 body held them in clear.
NAMES_FIELDS = ("shared", "altered", "withheld", "reason_params", "text_de", "text_en")


def names_salt(subject_key: bytes) -> bytes:
    """The subject's salt for names documents (keyed BLAKE2b: a PRF, as the content salts)."""
    return hashlib.blake2b(b"", key=subject_key, digest_size=32, person=_NAME_SALT).digest()


def names_commitment(salt: bytes, doc: bytes) -> bytes:
    """Commit to a names document's exact RFC 8785 bytes under a subject's salt."""
    return hashlib.sha256(_NAMES + salt + doc).digest()


def seal_names(subject_key: bytes, doc: NamesDocument) -> tuple[bytes, bytes]:
    """(commitment, RFC 8785 bytes) of ``doc`` for the subject holding ``subject_key``."""
    raw = canonical(doc)
    return names_commitment(names_salt(subject_key), raw), raw


def joined(
    body: BodyV2, doc: NamesDocument | None, erased: Mapping[str, str]
) -> tuple[ShownBody, dict[str, str]]:
    """A version 2 body joined with its names document for display: (the body as version 1
    held it, texts by language). ``doc`` None: erased -- no paths, no parameters, and the
    ``erased`` texts saying so. The texts are referred to as ``<commitment>/de`` and ``/en`` (a
    report looks them up by that reference, as it looks up a version 1 body's texts by digest)."""
    ref = body["names"]
    if doc is None:
        gone: ShownBody = {
            **body,
            "text_de": f"{ref}/de",
            "text_en": f"{ref}/en",
            "shared": [],
            "altered": [],
            "withheld": [],
            "reason_params": body.get("reason_params", {}),
            "erased": True,
        }
        return gone, dict(erased)
    # BodyV2 has no ``erased`` key (entry.body_of writes exactly its keys), but a TypedDict
    # cannot say it is closed before Python 3.13 (PEP 728), so mypy asks.
    shown: ShownBody = {
        **body,  # type: ignore[typeddict-item]
        "text_de": f"{ref}/de",
        "text_en": f"{ref}/en",
        "shared": doc["shared"],
        "altered": doc["altered"],
        "withheld": doc["withheld"],
        # A decision's or a person's parameters are in the names document; a gateway record's
        # (rotation, retention, seal) stay in the body.
        "reason_params": doc.get("reason_params", body.get("reason_params", {})),
    }
    return shown, {"de": doc["text_de"], "en": doc["text_en"]}


def names_problem(commitment: bytes, salt: bytes | None, doc: bytes) -> tuple[str, str, str] | None:
    """Why a names document given beside a tree fails its commitment: (what, expected, found)."""
    if salt is None:
        return ("names document held without its subject's key", "a subject key", "none")
    computed = names_commitment(salt, doc)
    if computed != commitment:
        return (
            "names document does not match its commitment",
            commitment.hex()[:16] + "…",
            computed.hex()[:16] + "…",
        )
    if not is_canonical(doc):
        return ("names document not in RFC 8785 form", "canonical JSON", "other")
    return None


def erased_through(customer: str, device: str | None, erasures: Sequence[tuple[int, str]]) -> int:
    """The index of the last erasure entry covering ``customer``'s (or its ``device``'s) names:
    entries before it may lack their names document (-1: none)."""
    subjects = {customer} if device is None else {customer, f"{customer}/{device}"}
    return max((i for i, subject in erasures if subject in subjects), default=-1)


def has_names(conn: sqlite3.Connection) -> bool:
    """Whether the database has the ``names`` table (a log only an older release has opened,
    read without upgrading it, has none and holds no version 2 bodies)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'names'")
    return found.fetchone() is not None


def check_names(
    data: TreeInput,
    records: Sequence[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: TreeVerdict,
) -> None:
    """Names documents given match their commitments; absent ones are covered by an erasure.

    Per body and per document, not per entry (bodies and documents are few): the entries are
    walked only to name a problem's entry, or when a document is absent (after an erasure)."""
    refs: dict[bytes, bytes] = {}  # body digest -> its names commitment
    for digest, body_doc in docs.items():
        ref = body_doc.get("names")
        if ref is None:
            continue
        try:
            parsed = bytes.fromhex(str(ref))
        except ValueError:
            parsed = b""
        if len(parsed) != 32 or parsed.hex() != ref:
            first = next(r[1] for r in records if r[3] == digest)
            verdict.fail(
                TAMPERED, first, "names commitment unreadable", "32 bytes in hex", str(ref)[:20]
            )
            return
        refs[digest] = parsed
    if not refs and not data.names:
        return
    used = set(refs.values())
    bad: list[tuple[int, str, str, str]] = []
    wrong = {}
    for commitment in used:
        held = data.names.get(commitment)
        if held is not None:
            why = names_problem(commitment, *held)
            if why is not None:
                wrong[commitment] = why
    absent = used - data.names.keys()
    if wrong:
        first_of = {r[3]: r[1] for r in reversed(records)}
        for commitment, why in wrong.items():
            bad.append((min(first_of[b] for b, c in refs.items() if c == commitment), *why))
    if absent and not data.moved:
        # One pass for the last use of each body, one for the erasure entries (few bodies).
        last = {r[3]: r[1] for r in records}
        kinds = {
            d: str(doc.get("subject") or "")
            for d, doc in docs.items()
            if doc.get("kind") == "erasure"
        }
        erasures = [(r[1], kinds[r[3]]) for r in records if r[3] in kinds] if kinds else []
        for commitment in absent:
            mine = {b for b, c in refs.items() if c == commitment}
            device = docs[next(iter(mine))].get("device")
            through = erased_through(
                data.customer, None if device is None else str(device), erasures
            )
            if max(last[b] for b in mine) < through:
                continue  # every entry using it lies before a signed erasure of its subject
            late = min(r[1] for r in records if r[3] in mine and r[1] >= through)
            bad.append(
                (
                    late,
                    "names document removed without a signed erasure of its subject",
                    "the names document, or an erasure after the entry",
                    "neither",
                )
            )
    if any(c not in used for c in data.names):
        bad.append((data.start, "a names document that no entry's body commits to", "none", "one"))
    if bad:
        verdict.fail(TAMPERED, *min(bad))
