"""The witness benchmark (gateway/bench/witness.py) on a small run against a real witness
process: its trees' proofs are the RFC 6962 proofs a witness accepts (every request answered
200, or the run stops with 1), and it prints how many requests it timed and over which trees."""

from __future__ import annotations

import pytest

from gateway.bench.witness import _Tree, main
from gateway.log.merkle import consistency_proof, root_of_leaf_hashes, verify_consistency


def test_the_trees_subtrees_are_rfc_6962_roots() -> None:
    tree = _Tree()
    tree.append(13, b"log")
    assert tree.subtree(0, 13) == tree.edge.root() == root_of_leaf_hashes(tree.levels[0])
    for old in range(1, 13):
        proof = consistency_proof(old, 13, tree.subtree)
        old_root = root_of_leaf_hashes(tree.levels[0][:old])
        verify_consistency(old, 13, old_root, tree.edge.root(), proof)  # raises if not


def test_a_small_run_is_accepted_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--logs", "2", "--rounds", "3", "--grow", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "6 add-checkpoint requests (2 logs x 3 rounds, +10 entries each, trees up to 30 entries):"
    )
    assert "p50" in out and "p99" in out and "requests/s" in out
