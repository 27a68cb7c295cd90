"""The log's hashing primitives shared by both formats, and the 0.1.0 chain format kept for
reading old logs: pure functions, the spec in code (``gateway/log/SPEC.md`` §2 and §5).

Since version 2 each log is an RFC 6962 Merkle tree (``gateway.log.leaf`` the entry bytes and
leaf, ``gateway.log.merkle`` the tree, ``gateway.log.note`` the C2SP checkpoints). What both the
trees and the 0.1.0 chains take from here, and what a verifier re-computes (SPEC.md §2):

    text_digest       = SHA-256("einblick/text/v1" || 0x00 || UTF-8(text))
    body_digest       = SHA-256("einblick/body/v1" || 0x00 || body bytes)
                        (body bytes: RFC 8785 JCS since version 2, ``gateway.log.jcs``;
                        ``canonical_json`` below in 0.1.0 logs and in consent receipts)
    source            = BLAKE2b-256(key = subject key, person = "einblick/src/v1" || 0x00,
                                    SHA-256(the payload as the device sent it))
    salt              = BLAKE2b-256(key = subject key, person = "einblick/salt/v1",
                                    UTF-8(name) || 0x00 || u64(idx))
    commitment        = SHA-256("einblick/content/v1" || 0x00 || salt || T || C)
                        T = 0x00 | 0x01 || u32(len) || UTF-8(topic); C = 0x00 | 0x01 || content

Every hash is domain-separated, so bytes hashed for one purpose can never be replayed as
another (the RFC 6962 lesson). Personal content (the upstream topic and payload) enters a log
only through its salted commitment, and the incoming payload only through the keyed source
commitment. Forgetting deletes the content and the subject key the salts derive from; the
commitments stay, so the log still verifies, and without the key a guessed value (a badge id,
a position) cannot be confirmed against them.

The 0.1.0 format (one hash chain per customer, checkpoints signed over a JSON message) is no
longer written. A log from 0.1.0 is sealed into its tree's first entry (SPEC.md §5) and its
chain is still checked on the box and in ``einblick-bundle/v1`` exports by the legacy path
(``gateway.log.legacy``, ``gateway.log.legacy_bundle``, ``gateway.log.legacy_keys``), with:

    genesis       = SHA-256("einblick/genesis/v1\\0" || origin || "\\0" || chain)
    entry_hash[i] = SHA-256("einblick/entry/v1\\0" || entry_hash[i-1] (genesis for i = 0)
                            || u64(i) || i64(at, µs since epoch) || body_digest
                            || source || (0x01 || commitment  |  0x00))
    checkpoint    = Ed25519("einblick/checkpoint/v1\\0" || canonical_json({origin, customer,
                            size, head, at, key}))
    rotation      = Ed25519 by old and new key("einblick/rotation/v1\\0" || canonical_json({origin,
                            old, new, at}))

(A version 2 rotation record is signed over ``gateway.log.leaf.rotation_message_v2``; the v1
message above is still written beside it into the ``keys`` table.)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

import orjson
from pydantic import JsonValue

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
    "keyed",
    "keyed_salt",
    "keyed_source",
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


def canonical_json(value: Mapping[str, JsonValue]) -> bytes:
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


# A subject's two keyed BLAKE2b states, ready to absorb (``keyed``): copying one costs about half
# of setting up the keyed hash again, which the writer did twice for every entry. The states hold
# the subject key, so whoever keeps them drops them with the key (``gateway.log.ids``).
Keyed = tuple["hashlib.blake2b", "hashlib.blake2b"]


def keyed(subject_key: bytes) -> Keyed:
    """(source, salt) hash states under ``subject_key``, before any input."""
    return (
        hashlib.blake2b(key=subject_key, digest_size=32, person=_SOURCE),
        hashlib.blake2b(key=subject_key, digest_size=32, person=_SALT),
    )


def keyed_source(states: Keyed, source_digest: bytes) -> bytes:
    """``source_commitment`` under the key of ``states`` (the same bytes)."""
    h = states[0].copy()
    h.update(source_digest)
    return h.digest()


def keyed_salt(states: Keyed, chain: str, index: int) -> bytes:
    """``salt_for`` under the key of ``states`` (the same bytes)."""
    h = states[1].copy()
    h.update(chain.encode("utf-8") + b"\x00" + _U64.pack(index))
    return h.digest()


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
