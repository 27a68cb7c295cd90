"""The stored Merkle tree of each log: which hashes are kept, and proofs read from them.

Each customer's log (and the gateway's own) is one RFC 6962 tree (``gateway.log.merkle``) whose
leaves are the entries' v2 bytes (``gateway.log.leaf``). What is stored, and why it is enough:

- level 0, the leaf hashes: the ``hash`` column of ``entries`` (one per entry, as the 0.1.0
  chain stored its chain hash there: no extra bytes);
- levels 8, 16, 24, …: ``tree_hashes(chain_id, level, idx, hash)``, one row per completed
  aligned subtree of 2**level leaves. That is one row per 256 entries, ~0.2 bytes per entry.

Any other node is recomputed from the stored level at or below it, like Go's tlog tiles of
height 8: an inclusion or consistency proof reads at most one 256-hash block per stored level
(3 blocks at 10 M entries) and hashes at most ~255 nodes per block, never the history.

Tree positions vs. chain positions: a log upgraded from 0.1.0 keeps its old chain entries at
``idx`` 0..base-1 and the tree's leaf ``i`` at ``idx = base + i`` (``trees.base``), so the old
entries stay readable in place; for every log started since, ``base`` is 0.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.errors import LogError
from gateway.log.merkle import (
    RightEdge,
    consistency_proof,
    inclusion_proof,
    node_hash,
)

__all__ = [
    "BLOCK",
    "STORED_EVERY",
    "TreeHashes",
    "TreeInfo",
    "restore_edge",
    "stored_levels",
    "tree_info",
]

STORED_EVERY = 8  # levels kept in tree_hashes: 8, 16, 24, …
BLOCK = 1 << STORED_EVERY


def stored_levels(completed: Iterable[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    """The completed subtrees (from ``RightEdge.append``) that ``tree_hashes`` keeps."""
    return [c for c in completed if c[0] and not c[0] % STORED_EVERY]


@dataclass(frozen=True, slots=True)
class TreeInfo:
    chain_id: int
    base: int  # chain index of the tree's leaf 0
    legacy_head: bytes | None  # the sealed 0.1.0 chain's final hash (None: no old chain)
    first_key: bytes  # key id (SHA-256 of the public key) current when the tree started
    dropped: int  # leaves removed by retention's compaction (a multiple of BLOCK)


def tree_info(conn: sqlite3.Connection, chain_id: int) -> TreeInfo | None:
    row = conn.execute(
        "SELECT base, legacy_head, first_key, dropped FROM trees WHERE chain_id = ?", (chain_id,)
    ).fetchone()
    if row is None:
        return None
    return TreeInfo(
        chain_id, int(row[0]), None if row[1] is None else bytes(row[1]), bytes(row[2]), int(row[3])
    )


class TreeHashes:
    """Hashes of one stored tree: leaves from ``entries``, levels 8k from ``tree_hashes``.

    ``subtree(lo, hi)`` is the callback ``merkle.inclusion_proof`` and ``consistency_proof``
    take. Blocks read are kept for the object's life: make one per proof (or per batch of
    proofs of the same tree size).
    """

    def __init__(self, conn: sqlite3.Connection, chain_id: int, base: int) -> None:
        self._conn = conn
        self._chain_id = chain_id
        self._base = base
        self._blocks: dict[tuple[int, int], list[bytes]] = {}

    def _block(self, level: int, block: int) -> list[bytes]:
        """Up to 256 consecutive stored hashes of ``level`` (0 or a multiple of 8)."""
        key = (level, block)
        found = self._blocks.get(key)
        if found is not None:
            return found
        lo = block * BLOCK
        if level == 0:
            rows = self._conn.execute(
                "SELECT idx, hash FROM entries WHERE chain_id = ? AND idx >= ? AND idx < ?"
                " ORDER BY idx",
                (self._chain_id, self._base + lo, self._base + lo + BLOCK),
            ).fetchall()
            start = self._base + lo
        else:
            rows = self._conn.execute(
                "SELECT idx, hash FROM tree_hashes WHERE chain_id = ? AND level = ?"
                " AND idx >= ? AND idx < ? ORDER BY idx",
                (self._chain_id, level, lo, lo + BLOCK),
            ).fetchall()
            start = lo
        hashes = []
        for offset, (idx, value) in enumerate(rows):
            if idx != start + offset:
                break  # a gap: callers find the block too short below
            hashes.append(bytes(value))
        self._blocks[key] = hashes
        return hashes

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree of 2**level leaves starting at leaf index << level."""
        below = level - level % STORED_EVERY
        span = level - below  # 0..7 levels to recompute above the stored level
        first = index << span  # position on the stored level
        block = self._block(below, first // BLOCK)
        offset = first % BLOCK
        hashes = block[offset : offset + (1 << span)]
        if len(hashes) != 1 << span:
            raise LogError(
                f"log tree #{self._chain_id}: the hashes below node (level {level}, index "
                f"{index}) are not all stored (compacted away, or the log was damaged): "
                "run `einblick verify`"
            )
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi): a complete aligned subtree, or a ragged right edge."""
        n = hi - lo
        if n <= 0:
            raise LogError(f"log tree #{self._chain_id}: empty range {lo}..{hi}")
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.subtree)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, self.subtree)

    def compact_range(self, size: int) -> list[bytes]:
        """The right-edge hashes of the first ``size`` leaves (largest subtree first)."""
        hashes = []
        lo = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(self.node(level, lo >> level))
                lo += 1 << level
        return hashes


def restore_edge(conn: sqlite3.Connection, chain_id: int, base: int, size: int) -> RightEdge:
    """The writer's right edge of a tree of ``size`` leaves, from stored hashes (at start)."""
    return RightEdge(size, TreeHashes(conn, chain_id, base).compact_range(size))
