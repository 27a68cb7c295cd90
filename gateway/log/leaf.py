"""The tree-era formats of the log: entry bytes, leaf hashes, origins, rotation records.

Each customer's log (and the gateway's own, ``_gateway``) is one RFC 6962 Merkle tree whose
leaves are the *entry bytes* below; ``gateway/log/SPEC.md`` is the prose version of this module.

    entry bytes (v2, 114 bytes, all integers big-endian):
        0x02                     version
        u64  index               the entry's position in its tree (0-based)
        i64  at                  microseconds since 1970-01-01T00:00:00Z
        32   body digest         SHA-256("einblick/body/v1\\0" || RFC 8785 bytes of the body)
        32   source commitment   keyed BLAKE2b of the incoming payload's SHA-256 (chain.py)
        0x00 || 32 zero bytes    no personal content was committed
      | 0x01 || 32 commitment   SHA-256("einblick/content/v1\\0" || salt || topic || content)

    leaf hash = SHA-256(0x00 || entry bytes)               (RFC 6962; node hashes use 0x01)

The fixed size lets a verifier hash a whole bundle's entries in bulk, and the version byte
separates these bytes from the 0.1.0 chain's ``einblick/entry/v1`` preimages.

Origins: the box's origin (``meta.origin``, the configured instance) joined to the tree's name,
``<box>/<customer>`` — one origin per customer and box, stable across restarts and upgrades.
A checkpoint's signature key name is the origin itself, so each customer's vkey names their log.

Rotation record (an entry of kind ``key_rotation`` in every tree, its body's ``reason_params``
holding the four hex values) — signed by the old and the new key over::

    "einblick/rotation/v2\\0" || origin || 0x00 || u64 index || old key (32) || new key (32)

From the record's index on, only the new key signs that tree's checkpoints: a checkpoint
covering the record (tree size > index) signed by the old key is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import overload

from gateway.log.chain import GATEWAY_CHAIN
from gateway.log.merkle import leaf_hash

__all__ = [
    "ENTRY_SIZE",
    "ENTRY_VERSION",
    "Hashes",
    "LeafError",
    "Record",
    "Records",
    "TreeInput",
    "entry_bytes",
    "entry_leaf",
    "parse_entry",
    "rotation_message_v2",
    "tree_origin",
]

ENTRY_VERSION = 0x02
ENTRY_LAYOUT = struct.Struct(">BQq32s32sB32s")
ENTRY_SIZE = ENTRY_LAYOUT.size  # 114
_NO_COMMITMENT = bytes(32)
_ROTATION = b"einblick/rotation/v2\x00"
_U64 = struct.Struct(">Q")


class LeafError(ValueError):
    """Entry bytes that do not follow the v2 layout; the message says which part."""


def tree_origin(box_origin: str, chain: str) -> str:
    """``<box origin>/<customer>`` (``<box origin>/_gateway`` for the gateway's own log)."""
    return f"{box_origin}/{chain}"


def chain_of_origin(box_origin: str, origin: str) -> str | None:
    prefix = box_origin + "/"
    if not origin.startswith(prefix):
        return None
    name = origin[len(prefix) :]
    return name or None


def entry_bytes(
    index: int, at_us: int, body_digest: bytes, source: bytes, commitment: bytes | None
) -> bytes:
    if commitment is None:
        return ENTRY_LAYOUT.pack(
            ENTRY_VERSION, index, at_us, body_digest, source, 0, _NO_COMMITMENT
        )
    return ENTRY_LAYOUT.pack(ENTRY_VERSION, index, at_us, body_digest, source, 1, commitment)


def entry_leaf(
    index: int, at_us: int, body_digest: bytes, source: bytes, commitment: bytes | None
) -> bytes:
    return leaf_hash(entry_bytes(index, at_us, body_digest, source, commitment))


def parse_entry(raw: bytes) -> tuple[int, int, bytes, bytes, bytes | None]:
    """(index, at µs, body digest, source, commitment or None) of v2 entry bytes."""
    if len(raw) != ENTRY_SIZE:
        raise LeafError(f"entry bytes are {ENTRY_SIZE} long, found {len(raw)}")
    version, index, at, body, source, flag, commitment = ENTRY_LAYOUT.unpack(raw)
    if version != ENTRY_VERSION:
        raise LeafError(f"entry version: expected 0x02, found 0x{version:02x}")
    if flag == 0:
        if commitment != _NO_COMMITMENT:
            raise LeafError("entry without a commitment must carry 32 zero bytes after 0x00")
        return index, at, body, source, None
    if flag != 1:
        raise LeafError(f"commitment flag: expected 0x00 or 0x01, found 0x{flag:02x}")
    return index, at, body, source, commitment


def rotation_message_v2(origin: str, index: int, old: bytes, new: bytes) -> bytes:
    return _ROTATION + origin.encode("utf-8") + b"\x00" + _U64.pack(index) + old + new


def is_gateway(chain: str) -> bool:
    return chain == GATEWAY_CHAIN


Record = tuple[int, int, int, bytes, bytes, int, bytes]  # version, index, at, body, src, flag, c


class Records(Sequence[Record]):
    """The first ``count`` entries of a blob of entry bytes, unpacked only when asked for.

    The proof checker's bulk checks read columns straight from the bytes; only the rare paths
    (rotation records, erasures, naming a problem) walk entries one by one, so a bundle of a
    year's entries never builds a tuple per entry."""

    __slots__ = ("_blob", "_count")

    def __init__(self, blob: bytes, count: int) -> None:
        self._blob = blob
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, pos: int) -> Record: ...

    @overload
    def __getitem__(self, pos: slice) -> Sequence[Record]: ...

    def __getitem__(self, pos: int | slice) -> Record | Sequence[Record]:
        if isinstance(pos, slice):
            return [self[i] for i in range(*pos.indices(self._count))]
        if pos < 0:
            pos += self._count
        if not 0 <= pos < self._count:
            raise IndexError(f"entry position {pos} outside 0..{self._count - 1}")
        found: Record = ENTRY_LAYOUT.unpack_from(self._blob, pos * ENTRY_SIZE)
        return found

    def __iter__(self) -> Iterator[Record]:
        return ENTRY_LAYOUT.iter_unpack(memoryview(self._blob)[: self._count * ENTRY_SIZE])

    def __reversed__(self) -> Iterator[Record]:
        return (self[i] for i in range(self._count - 1, -1, -1))

    def column(self, offset: int, size: int) -> list[bytes]:
        """The ``size`` bytes at ``offset`` of every entry (e.g. 17, 32: the body digests),
        cut out by one struct pass in C."""
        field = struct.Struct(f"{offset}x{size}s{ENTRY_SIZE - offset - size}x")
        view = memoryview(self._blob)[: self._count * ENTRY_SIZE]
        return list(map(itemgetter(0), field.iter_unpack(view)))


class Hashes(Sequence[bytes]):
    """32-byte hashes concatenated in one blob (a bundle's listed leaves), each sliced out only
    when asked for; ``blob`` lets a checker compare them all at once."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        if len(blob) % 32:
            raise ValueError(f"{len(blob)} bytes are not a whole number of 32-byte hashes")
        self.blob = blob

    def __len__(self) -> int:
        return len(self.blob) // 32

    @overload
    def __getitem__(self, pos: int) -> bytes: ...

    @overload
    def __getitem__(self, pos: slice) -> Sequence[bytes]: ...

    def __getitem__(self, pos: int | slice) -> bytes | Sequence[bytes]:
        count = len(self)
        if isinstance(pos, slice):
            lo, hi, step = pos.indices(count)
            if step == 1:
                return Hashes(self.blob[lo * 32 : max(hi, lo) * 32])
            return [self[i] for i in range(lo, hi, step)]
        if pos < 0:
            pos += count
        if not 0 <= pos < count:
            raise IndexError(f"hash position {pos} outside 0..{count - 1}")
        return self.blob[pos * 32 : pos * 32 + 32]


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
    # names commitment -> (the subject's salt, None when its key is gone; the document's bytes)
    names: Mapping[bytes, tuple[bytes | None, bytes]] = field(default_factory=dict)
    # the database's view: a closed copy left by a handover (its last entry is the
    # ``handing_over`` entry). Its content and names documents moved with the tree to the
    # instance that continues it, and the old instance removes its copy (gateway.log.leftovers):
    # here their absence is no tampering. Held ones are still checked. Never set for a bundle.
    moved: bool = False
