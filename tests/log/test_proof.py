"""The one proof checker on a tree as given: verified, or the first problem by the spec's order
of checks, or incomplete when entries are not covered by a verified checkpoint."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.log.bundle import export_customer
from gateway.log.bundle_lines import parse_bundle
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


def _changed(tree: TreeInput, offset: int, xor: int) -> TreeInput:
    raw = bytearray(tree.entries)
    raw[offset] ^= xor
    return replace(tree, entries=bytes(raw))


@pytest.mark.parametrize("k", range(8))
def test_every_byte_of_an_index_is_checked_in_bulk(log: Log, signer: Signer, k: int) -> None:
    """The bulk check compares each of the index's eight byte columns; a change in any one is
    named at its entry by the precise walk, before the leaf check would see it."""
    tree = tree_of(log)
    verdict = check_tree(_changed(tree, 5 * ENTRY_SIZE + 1 + k, 0x01), signer.public)
    assert verdict.problem is not None and verdict.code == TAMPERED
    if k == 7:  # index 5 becomes 4: a repeat of an index already taken
        assert (verdict.problem.index, verdict.problem.what) == (
            4,
            "entry inserted, repeated or out of order",
        )
    else:  # a larger index: entry 5 is missing
        assert (verdict.problem.index, verdict.problem.what) == (5, "entry missing")


@pytest.mark.parametrize(
    ("offset", "xor"),
    [(0, 0x01), (81, 0x02), (81, 0x03), *((82 + k, 0x80) for k in (0, 13, 31))],
    ids=["version", "flag-2", "flag-3", "commitment-0", "commitment-13", "commitment-31"],
)
def test_a_layout_violation_is_found_in_bulk_and_named(
    log: Log, signer: Signer, offset: int, xor: int
) -> None:
    tree = tree_of(log)
    unflagged = [p for p in range(10) if tree.entries[p * ENTRY_SIZE + 81] == 0]
    assert unflagged  # make_draft withholds every fourth message: no content, flag 0
    pos = unflagged[-1]
    verdict = check_tree(_changed(tree, pos * ENTRY_SIZE + offset, xor), signer.public)
    assert verdict.problem is not None
    assert (verdict.problem.index, verdict.problem.what) == (pos, "entry bytes not in layout v2")
