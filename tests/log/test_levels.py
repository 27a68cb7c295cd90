"""The levels of a tree in memory give every prefix's root and consistency proofs that verify,
also for a log whose first blocks were compacted away (only their compact range known)."""

from __future__ import annotations

import hashlib

import pytest

from gateway.log.levels import consistency_from, levels_of, prefix_root
from gateway.log.merkle import (
    EMPTY_ROOT,
    ProofError,
    root_of_leaf_hashes,
    verify_consistency,
)

LEAVES = [hashlib.sha256(b"\x00" + i.to_bytes(4)).digest() for i in range(70)]


def test_every_prefix_root_is_the_rfc6962_root() -> None:
    levels = levels_of(LEAVES)
    assert prefix_root(levels, 0) == EMPTY_ROOT
    for size in range(1, len(LEAVES) + 1):
        assert prefix_root(levels, size) == root_of_leaf_hashes(LEAVES[:size]), size


def test_consistency_proofs_between_prefixes_verify() -> None:
    levels = levels_of(LEAVES)
    for old, new in [(1, 2), (3, 7), (16, 70), (37, 64), (69, 70)]:
        proof = consistency_from(levels, old, new)
        verify_consistency(old, new, prefix_root(levels, old), prefix_root(levels, new), proof)


def _compact_range(leaves: list[bytes], start: int) -> list[bytes]:
    found, lo = [], 0
    for k in range(start.bit_length() - 1, -1, -1):
        if start >> k & 1:
            found.append(root_of_leaf_hashes(leaves[lo : lo + (1 << k)]))
            lo += 1 << k
    return found


@pytest.mark.parametrize("start", [1, 16, 48, 64])
def test_a_compacted_prefix_still_gives_the_roots_after_it(start: int) -> None:
    levels = levels_of(LEAVES[start:], start, _compact_range(LEAVES, start))
    for size in range(start, len(LEAVES) + 1):
        if size:
            assert prefix_root(levels, size) == root_of_leaf_hashes(LEAVES[:size]), size


def test_a_node_inside_the_compacted_part_is_not_invented() -> None:
    levels = levels_of(LEAVES[48:], 48, _compact_range(LEAVES, 48))
    with pytest.raises(ProofError, match="compacted part"):
        prefix_root(levels, 40)


def test_a_compacted_prefix_knows_exactly_the_nodes_outside_it_and_its_compact_range() -> None:
    """Every start: a node is known (as in the whole tree) when it covers no leaf of the prefix,
    or its leaves begin where a compact-range node no larger than it begins (it is made of that
    node, the smaller ones after it and new leaves); every other node is unknown."""
    whole = levels_of(LEAVES)
    for start in range(1, len(LEAVES) + 1):
        levels = levels_of(LEAVES[start:], start, _compact_range(LEAVES, start))
        ranged: set[tuple[int, int]] = set()
        lo = 0
        for k in range(start.bit_length() - 1, -1, -1):
            if start >> k & 1:
                ranged.add((k, lo >> k))
                lo += 1 << k
        assert [len(level) for level in levels] == [len(level) for level in whole][: len(levels)]
        for k, level in enumerate(levels):
            for j, node in enumerate(level):
                made = any(rj << rk == j << k and rk <= k for rk, rj in ranged)
                expected = whole[k][j] if j << k >= start or made else None
                assert node == expected, (start, k, j)
