"""RFC 6962 trees: roots, the right edge, inclusion and consistency proofs, and refusals."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.log.merkle import (
    EMPTY_ROOT,
    ProofError,
    RightEdge,
    SubtreeHash,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    parent_level,
    root_of_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 written as the RFC writes it, recursively: the reference the rest must match."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(b"entry %d" % i) for i in range(n)]


def subtree_of(leaves: list[bytes]) -> SubtreeHash:
    return lambda lo, hi: mth(leaves[lo:hi])


def test_hashes_are_domain_separated_as_rfc_6962_says() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# RFC 6962's reference vectors (certificate-transparency-go merkle tests): the roots of the
# first n of eight fixed leaves.
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_roots_match_the_reference_vectors_by_every_route() -> None:
    for n, expected in enumerate(RFC_ROOTS, 1):
        hashes = [leaf_hash(d) for d in RFC_LEAVES[:n]]
        edge = RightEdge()
        for h in hashes:
            edge.append(h)
        assert root_of_leaf_hashes(hashes).hex() == expected
        assert edge.root().hex() == expected
        assert mth(hashes).hex() == expected


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=1, max_value=130))
def test_bulk_leaf_hashes_are_the_leaf_hash_of_each_record(count: int, size: int) -> None:
    blob = bytes(range(256)) * (count * size // 256 + 1)
    records = [blob[i * size : (i + 1) * size] for i in range(count)]
    assert leaf_hashes(blob, size, count) == [leaf_hash(r) for r in records]
    assert leaf_hashes(blob, size, count)[:2] == leaf_hashes(blob, size, min(count, 2))


@given(st.integers(min_value=0, max_value=40))
def test_a_parent_level_pairs_from_the_left_and_leaves_a_lone_node_out(n: int) -> None:
    level = leaves_of(n)
    assert parent_level(level) == [node_hash(level[i], level[i + 1]) for i in range(0, n - 1, 2)]


@given(st.integers(min_value=0, max_value=300))
def test_right_edge_and_level_order_agree_with_the_recursive_definition(n: int) -> None:
    leaves = leaves_of(n)
    edge = RightEdge()
    for h in leaves:
        edge.append(h)
    assert edge.size == n
    assert root_of_leaf_hashes(leaves) == mth(leaves) == edge.root()
    # The state survives a restart: the right edge alone continues the tree.
    again = RightEdge(edge.size, edge.hashes)
    more = leaf_hash(b"after restart")
    again.append(more)
    assert again.root() == mth([*leaves, more])


def test_append_reports_each_completed_subtree_with_its_place() -> None:
    leaves = leaves_of(8)
    edge = RightEdge()
    done = [c for h in leaves for c in edge.append(h)]
    for level, index, h in done:
        assert h == mth(leaves[index << level : (index + 1) << level])
    assert sorted((lv, i) for lv, i, _ in done) == sorted(
        [(0, i) for i in range(8)] + [(1, i) for i in range(4)] + [(2, 0), (2, 1), (3, 0)]
    )


def test_a_right_edge_with_the_wrong_number_of_hashes_is_refused() -> None:
    with pytest.raises(ValueError, match="right-edge hashes"):
        RightEdge(5, [b"x" * 32])


@given(st.integers(min_value=1, max_value=200), st.data())
def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not(
    n: int, data: st.DataObject
) -> None:
    leaves = leaves_of(n)
    root = mth(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = inclusion_proof(index, n, subtree_of(leaves))
    verify_inclusion(leaves[index], index, n, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"forged"), index, n, proof, root)
    if n > 1:
        other = (index + 1) % n
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], other, n, proof, root)
    if proof:
        flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, n, flipped, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, n, proof[:-1], root)


@given(st.integers(min_value=0, max_value=200), st.data())
def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not(
    new: int, data: st.DataObject
) -> None:
    leaves = leaves_of(new)
    old = data.draw(st.integers(min_value=0, max_value=new))
    proof = consistency_proof(old, new, subtree_of(leaves))
    verify_consistency(old, new, mth(leaves[:old]), mth(leaves), proof)
    if old > 0:
        rewritten = list(leaves)
        victim = data.draw(st.integers(min_value=0, max_value=old - 1))
        rewritten[victim] = leaf_hash(b"rewritten")
        forged = consistency_proof(old, new, subtree_of(rewritten))
        with pytest.raises(ProofError):
            verify_consistency(old, new, mth(leaves[:old]), mth(rewritten), forged)


def test_consistency_edge_cases_fail_closed() -> None:
    leaves = leaves_of(5)
    with pytest.raises(ProofError, match="same size"):
        verify_consistency(5, 5, mth(leaves), leaf_hash(b"other"), [])
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(0, 5, EMPTY_ROOT, mth(leaves), [b"x" * 32])
    with pytest.raises(ProofError, match="cannot extend"):
        verify_consistency(6, 5, mth(leaves), mth(leaves), [])
    with pytest.raises(ProofError, match="is empty"):
        verify_consistency(3, 5, mth(leaves[:3]), mth(leaves), [])
    with pytest.raises(ProofError, match="longer than any tree"):
        verify_consistency(3, 5, mth(leaves[:3]), mth(leaves), [b"x" * 32] * 200)
    with pytest.raises(ProofError, match="bytes"):
        verify_inclusion(leaves[0], 0, 5, [b"short"], mth(leaves))
    with pytest.raises(ProofError, match="not in a tree"):
        inclusion_proof(5, 5, subtree_of(leaves))


@given(
    st.integers(min_value=0, max_value=300),
    st.lists(st.integers(min_value=0, max_value=70), max_size=8),
)
def test_extending_by_runs_is_appending_one_by_one(start: int, runs: list[int]) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(start + sum(runs))]
    one = RightEdge()
    for h in leaves[:start]:
        one.append(h)
    bulk = RightEdge(start, one.hashes)
    pos = start
    for run in runs:
        bulk.extend(leaves[pos : pos + run])
        for h in leaves[pos : pos + run]:
            one.append(h)
        pos += run
        assert (bulk.size, bulk.hashes, bulk.root()) == (one.size, one.hashes, one.root())
