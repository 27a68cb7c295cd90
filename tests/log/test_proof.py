"""The one proof checker on a tree as given: verified, or the first problem by the spec's order
of checks, or incomplete when entries are not covered by a verified checkpoint."""

from __future__ import annotations

from dataclasses import replace

from gateway.log.bundle import export_customer, parse_bundle
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_SIZE, TreeInput
from gateway.log.merkle import root_of_leaf_hashes
from gateway.log.proof import check_tree
from gateway.log.verdict import INCOMPLETE, OK, TAMPERED, Kept
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


def tree_of(log: Log, n: int = 10, *, sign_last: bool = True) -> TreeInput:
    log.write([make_draft(i, customer=C) for i in range(n)])
    if not sign_last:
        log.write([make_draft(n + i, customer=C) for i in range(3)], checkpoint=False)
    return parse_bundle(export_customer(log.path, C)).tree


def test_a_whole_signed_tree_verifies(log: Log, signer: Signer) -> None:
    tree = tree_of(log)
    verdict = check_tree(tree, signer.public)
    assert verdict.code == OK and verdict.size == verdict.covered == 10
    assert verdict.root == root_of_leaf_hashes(list(tree.leaves))
    assert verdict.keys == [signer.fingerprint]


def test_entries_after_the_last_checkpoint_are_incomplete(log: Log, signer: Signer) -> None:
    verdict = check_tree(tree_of(log, sign_last=False), signer.public)
    assert verdict.problem is not None and verdict.code == INCOMPLETE
    assert (verdict.problem.index, verdict.covered, verdict.size) == (10, 10, 13)


def test_a_deleted_entry_is_named_before_anything_later(log: Log, signer: Signer) -> None:
    tree = tree_of(log)
    cut = tree.entries[: 4 * ENTRY_SIZE] + tree.entries[5 * ENTRY_SIZE :]
    leaves = [*tree.leaves[:4], *tree.leaves[5:]]
    verdict = check_tree(replace(tree, entries=cut, leaves=leaves), signer.public)
    assert verdict.problem is not None and verdict.code == TAMPERED
    assert (verdict.problem.index, verdict.problem.what) == (4, "entry missing")


def test_a_flipped_byte_is_named_at_its_entry(log: Log, signer: Signer) -> None:
    tree = tree_of(log)
    raw = bytearray(tree.entries)
    raw[6 * ENTRY_SIZE + 12] ^= 1  # entry 6's time
    verdict = check_tree(replace(tree, entries=bytes(raw)), signer.public)
    assert verdict.problem is not None and verdict.problem.index == 6
    assert "do not hash to the leaf" in verdict.problem.what


def test_another_key_is_a_replaced_key(log: Log) -> None:
    verdict = check_tree(tree_of(log), Signer.generate().public)
    assert verdict.problem is not None and "replaced key" in verdict.problem.what


def test_a_kept_checkpoint_the_log_no_longer_extends(log: Log, signer: Signer) -> None:
    tree = tree_of(log)
    good = check_tree(tree, signer.public, since=Kept(4, root_of_leaf_hashes(tree.leaves[:4])))
    assert good.ok
    other = check_tree(tree, signer.public, since=Kept(4, b"\x01" * 32))
    assert other.problem is not None and "history rewritten" in other.problem.what
    longer = check_tree(tree, signer.public, since=Kept(11, b"\x01" * 32))
    assert longer.problem is not None and "cut back" in longer.problem.what
