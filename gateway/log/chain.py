"""The hash and signature formats of the log: pure functions, the spec in code.

Why per-customer hash chains plus signed checkpoints, not a Merkle tree: a customer's proof is
their own chain, start to end, so an export never contains another customer's data and a verifier
is forty lines anyone can re-implement. A Merkle tree would buy inclusion proofs of one entry in
O(log n), but customers verify *all* their entries (an audit, not a lookup) and the gateway
appends one customer at a time, so a chain costs one SHA-256 per entry and nothing else. The
chains' heads are signed every second (checkpoints), so signing cost is per chain per second,
not per entry, and a verifier checks one signature per checkpoint and one hash per entry.

Every hash is domain-separated (``einblick/<what>/v1`` and a NUL byte), so bytes hashed for one
purpose can never be replayed as another (the RFC 6962 lesson).

    text_digest   = SHA-256("einblick/text/v1\\0"    || utf8(text))
    body_digest   = SHA-256("einblick/body/v1\\0"    || canonical_json(body))
    salt          = BLAKE2b-256(key=subject_key, person="einblick/salt/v1", chain || "\\0" || u64(index))
    commitment    = SHA-256("einblick/content/v1\\0" || salt || topic_part || content_part)
    genesis       = SHA-256("einblick/genesis/v1\\0" || origin || "\\0" || chain)
    entry_hash[i] = SHA-256("einblick/entry/v1\\0" || entry_hash[i-1] (genesis for i = 0)
                            || u64(i) || i64(at, µs since epoch) || body_digest
                            || source || (0x01 || commitment  |  0x00))
    source = BLAKE2b(sha256(incoming payload), key = the subject's key): destroyed on erasure
    checkpoint    = Ed25519("einblick/checkpoint/v1\\0" || canonical_json({origin, customer,
                            size, head, at, key}))
    rotation      = Ed25519 by old and new key("einblick/rotation/v1\\0" || canonical_json({origin,
                            old, new, at}))

The *body* is everything the customer reads that repeats: kind, customer, device, recipient,
outcome, grant, policy version, purpose, legal basis, the paths shared/altered/withheld, the
reason, and the digests of the exact German and English texts. Bodies and texts are stored once
and referenced, so a million entries that say the same thing store it once, yet every entry's
hash covers the exact text shown.

Personal content (the upstream topic and payload) enters the chain only through its salted
commitment. Forgetting deletes the content and the subject key the salts derive from; the
commitment stays, so the chain still verifies, and without the salt a guessed value (a badge id,
a position) cannot be confirmed against it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "GATEWAY_CHAIN",
    "body_digest",
    "canonical_json",
    "checkpoint_message",
    "commitment_of_tail",
    "content_commitment",
    "content_tail",
    "entry_hash",
    "genesis_hash",
    "rotation_message",
    "salt_for",
    "text_digest",
]

GATEWAY_CHAIN = "_gateway"  # the chain of entries that belong to no customer

_TEXT = b"einblick/text/v1\x00"
_BODY = b"einblick/body/v1\x00"
_SALT = b"einblick/salt/v1"  # BLAKE2b personalisation: exactly 16 bytes
_SOURCE = b"einblick/src/v1\x00"  # BLAKE2b personalisation: exactly 16 bytes
_CONTENT = b"einblick/content/v1\x00"
_GENESIS = b"einblick/genesis/v1\x00"
_ENTRY = b"einblick/entry/v1\x00"
_CHECKPOINT = b"einblick/checkpoint/v1\x00"
_ROTATION = b"einblick/rotation/v1\x00"
_INDEX_AT = struct.Struct(">Qq")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_sha256 = hashlib.sha256


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted-key compact JSON (orjson): the one serialisation every hash is taken over."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def text_digest(text: str) -> bytes:
    return _sha256(_TEXT + text.encode("utf-8")).digest()


def body_digest(canonical: bytes) -> bytes:
    return _sha256(_BODY + canonical).digest()


def source_commitment(subject_key: bytes, source_digest: bytes) -> bytes:
    """What an entry stores of the incoming message: its SHA-256, keyed by the subject's key.

    A plain digest of the payload would outlive erasure and let anyone confirm a guessed short
    payload ("ON", a known MAC); once the subject's key is destroyed this one says nothing.
    """
    return hashlib.blake2b(source_digest, key=subject_key, digest_size=32, person=_SOURCE).digest()


def salt_for(subject_key: bytes, chain: str, index: int) -> bytes:
    """The per-entry salt: keyed BLAKE2b (a PRF by design, one call, no HMAC key schedule)."""
    return hashlib.blake2b(
        chain.encode("utf-8") + b"\x00" + _U64.pack(index),
        key=subject_key,
        digest_size=32,
        person=_SALT,
    ).digest()


def content_tail(salt: bytes, topic: str | None, content: bytes | None) -> bytes:
    """What follows the domain prefix in a content commitment: salt, topic part, content part
    (a bundle carries exactly these bytes, so the verifier hashes them in bulk)."""
    parts = [salt]
    if topic is None:
        parts.append(b"\x00")
    else:
        raw = topic.encode("utf-8")
        parts += [b"\x01", _U32.pack(len(raw)), raw]
    parts.append(b"\x00" if content is None else b"\x01" + content)
    return b"".join(parts)


def content_commitment(salt: bytes, topic: str | None, content: bytes | None) -> bytes:
    """Commit to (topic, content); None and empty are different values."""
    return _sha256(_CONTENT + content_tail(salt, topic, content)).digest()


def commitment_of_tail(tail: bytes) -> bytes:
    return _sha256(_CONTENT + tail).digest()


def genesis_hash(origin: str, chain: str) -> bytes:
    return _sha256(_GENESIS + origin.encode("utf-8") + b"\x00" + chain.encode("utf-8")).digest()


def entry_hash(  # noqa: PLR0917 -- the hot path; positional is the spec's order
    prev: bytes,
    index: int,
    at_us: int,
    body: bytes,
    source_digest: bytes,
    commitment: bytes | None,
) -> bytes:
    tail = b"\x00" if commitment is None else b"\x01" + commitment
    return _sha256(
        b"".join((_ENTRY, prev, _INDEX_AT.pack(index, at_us), body, source_digest, tail))
    ).digest()


def checkpoint_message(
    *, origin: str, customer: str, size: int, head: bytes, at_us: int, key_id: bytes
) -> bytes:
    return _CHECKPOINT + canonical_json(
        {
            "origin": origin,
            "customer": customer,
            "size": size,
            "head": head.hex(),
            "at": at_us,
            "key": key_id.hex(),
        }
    )


def rotation_message(origin: str, old: bytes, new: bytes, at_us: int) -> bytes:
    return _ROTATION + canonical_json(
        {"origin": origin, "old": old.hex(), "new": new.hex(), "at": at_us}
    )
