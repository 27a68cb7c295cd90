"""Every complete node of a tree held in memory: roots of any prefix, proofs between prefixes.

The proof checker hashes a bundle's leaves once, level by level, keeping each level; the root
of any prefix (each checkpoint's, a kept checkpoint's) then folds from O(log n) nodes, and an
RFC 6962 consistency proof reads its subtrees from the same levels.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.log.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    node_hash,
    parent_level,
)

__all__ = ["Levels", "consistency_from", "levels_of", "prefix_root"]

Levels = list[list[bytes | None]]


def levels_of(
    leaves: Sequence[bytes], start: int = 0, start_hashes: Sequence[bytes] = ()
) -> Levels:
    """Every complete node of the tree, level by level (level 0: the leaves).

    Nodes of a compacted prefix are unknown (None) except the compact range given for it.
    Keeping the levels lets the root of any prefix (every checkpoint, a kept checkpoint) be
    folded from O(log n) nodes instead of re-hashing the leaves once per checkpoint.
    """
    if not start:
        return _full_levels(leaves)
    level = [None] * start + list(leaves)
    known: dict[tuple[int, int], bytes] = {}
    lo = 0
    for k in range(start.bit_length() - 1, -1, -1):
        if start >> k & 1:
            known[(k, lo >> k)] = start_hashes[len(known)]
            lo += 1 << k
    for (lk, j), h in known.items():  # an odd start: its last compact-range node is a leaf
        if lk == 0:
            level[j] = h
    levels = [level]
    k = 0
    while len(level) > 1:
        k += 1
        # Nodes wholly inside the compacted prefix are unknown but for the compact range (set
        # below): filled at C speed, not paired one by one, so an onward check of a few new
        # leaves over a large held prefix costs the new leaves, not the prefix.
        inside = min(start >> k, len(level) // 2)
        nxt: list[bytes | None] = [None] * inside
        for i in range(2 * inside, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            nxt.append(None if a is None or b is None else node_hash(a, b))
        for (lk, j), h in known.items():
            if lk == k and j < len(nxt):
                nxt[j] = h
        level = nxt
        levels.append(level)
    return levels


def _full_levels(leaves: Sequence[bytes]) -> Levels:
    """Every level of a tree with all its leaves, one list comprehension per level."""
    level: list[bytes] = list(leaves)
    levels: Levels = [list(level)]
    while len(level) > 1:
        level = parent_level(level)
        levels.append(list(level))
    return levels


def _node(levels: Levels, k: int, j: int) -> bytes:
    found = levels[k][j] if k < len(levels) and j < len(levels[k]) else None
    if found is None:
        raise ProofError(f"node (level {k}, index {j}) lies in the compacted part of the log")
    return found


def prefix_root(levels: Levels, size: int) -> bytes:
    """MTH of the first ``size`` leaves, from the complete nodes in ``levels``."""
    if size == 0:
        return EMPTY_ROOT
    nodes = []
    lo = 0
    for k in range(size.bit_length() - 1, -1, -1):
        if size >> k & 1:
            nodes.append(_node(levels, k, lo >> k))
            lo += 1 << k
    root = nodes[-1]
    for h in reversed(nodes[:-1]):
        root = node_hash(h, root)
    return root


def _subtree(levels: Levels, lo: int, hi: int) -> bytes:
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        return _node(levels, n.bit_length() - 1, lo // n)
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_subtree(levels, lo, lo + k), _subtree(levels, lo + k, hi))


def consistency_from(levels: Levels, old: int, new: int) -> list[bytes]:
    return consistency_proof(old, new, lambda lo, hi: _subtree(levels, lo, hi))
