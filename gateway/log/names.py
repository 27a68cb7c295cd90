"""The personal part of an entry: committed per subject, stored apart, destroyed by forgetting.

Everything in an entry that a device or a person chose -- the field paths shared, altered and
withheld (a device's JSON keys), the reason's parameters (a consent giver's or an erasure
requester's name, a field path), and the exact German and English explanation texts (which
carry the device's display name, its keys and the people's names) -- is the entry's *names
document*. The body, which is hashed into the log and kept forever, holds only its commitment:

    names_salt       = BLAKE2b-256(key=subject_key, person="einblick/name/v1", "")
    names_commitment = SHA-256("einblick/names/v1\\0" || names_salt || canonical_json(names_doc))

``subject_key`` is the same per-subject key the content salts and the source commitment derive
from (``gateway.log.chain``): one per (customer, device), and one per customer for the entries
that belong to no device (consent, erasure records). The salt is one per subject, not per entry,
so a subject's identical documents share one commitment and are stored once (dedup within a
subject; never across subjects, so a guessed document of one subject cannot be confirmed
against another's).

Forgetting a subject deletes its key and its names documents. The commitment stays in every
body, so every entry hash and every proof still verifies; without the salt a guessed name, key or
text cannot be confirmed against it (a 256-bit salt under SHA-256), and the clear values are in
no row, no page and no later bundle.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from typing import Any

from gateway.locale import tr
from gateway.log.chain import canonical_json

__all__ = [
    "NAMES_FIELDS",
    "has_names",
    "joined",
    "names_commitment",
    "names_salt",
    "seal_names",
]

_NAME_SALT = b"einblick/name/v1"  # BLAKE2b personalisation: exactly 16 bytes
_NAMES = b"einblick/names/v1\x00"

# The keys of a names document, in the body of a v1 entry (the release before names were
# committed) and in the names document since.
NAMES_FIELDS = ("shared", "altered", "withheld", "reason_params", "text_de", "text_en")


def names_salt(subject_key: bytes) -> bytes:
    """The subject's salt for names documents (keyed BLAKE2b: a PRF, as the content salts)."""
    return hashlib.blake2b(b"", key=subject_key, digest_size=32, person=_NAME_SALT).digest()


def names_commitment(salt: bytes, doc: bytes) -> bytes:
    """Commit to a canonical names document under a subject's salt."""
    return hashlib.sha256(_NAMES + salt + doc).digest()


def seal_names(subject_key: bytes, doc: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(commitment, canonical bytes) of ``doc`` for the subject holding ``subject_key``."""
    raw = canonical_json(doc)
    return names_commitment(names_salt(subject_key), raw), raw


def joined(
    body: Mapping[str, Any], doc: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A version 2 body joined with its names document for display: (the body as version 1
    held it, texts by language). ``doc`` None: erased -- no paths, no parameters, and a text
    saying so. The texts are referred to as ``<commitment>/de`` and ``/en`` (a report looks
    them up by that reference, as it looks up a version 1 body's texts by digest)."""
    ref = str(body["names"])
    out = {**body, "text_de": f"{ref}/de", "text_en": f"{ref}/en"}
    if doc is None:
        out.update(shared=[], altered=[], withheld=[], reason_params={}, erased=True)
        return out, {lang: tr(lang, "log.names_erased") for lang in ("de", "en")}
    out.update({k: doc[k] for k in NAMES_FIELDS if k not in ("text_de", "text_en")})
    return out, {"de": str(doc["text_de"]), "en": str(doc["text_en"])}


def names_problem(
    commitment: bytes, doc: bytes, subject_key: bytes | None
) -> tuple[str, str, str] | None:
    """Why a stored names document fails its commitment: (what, expected, found), or None."""
    if subject_key is None:
        return ("names document held without its subject's key", "a subject key", "none")
    computed = names_commitment(names_salt(subject_key), doc)
    if computed != commitment:
        return (
            "names document does not match its commitment",
            commitment.hex()[:16] + "…",
            computed.hex()[:16] + "…",
        )
    return None


class Erasures:
    """Which entries' names a signed erasure entry covers: for each (chain, device or None for
    the whole customer), the index of its latest erasure entry; an entry before it is covered."""

    def __init__(self) -> None:
        self._through: dict[tuple[object, str | None], int] = {}

    def add(self, chain: object, subject: str | None, index: int) -> None:
        """An erasure entry at ``index`` of ``chain`` for ``subject`` ("customer[/device]")."""
        _, sep, device = (subject or "").partition("/")
        key = (chain, device if sep and device else None)
        self._through[key] = max(index, self._through.get(key, -1))

    def covers(self, chain: object, device: str | None, index: int) -> bool:
        if self._through.get((chain, None), -1) > index:
            return True
        return device is not None and self._through.get((chain, device), -1) > index


def has_names(conn: sqlite3.Connection) -> bool:
    """Whether the database has the ``names`` table (a log only an older release has opened,
    read without upgrading it, has none and holds version 1 bodies only)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'names'")
    return found.fetchone() is not None
