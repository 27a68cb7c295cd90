"""A customer's tree moved between two real log databases, each with its own real key.

The old instance closes the tree (final entry, checkpoint, its signature over the record), the
new one adopts every row and writes the handover record: one bundle from the new database holds
the whole history and verifies as one tree under either key, against a bundle the customer kept
from before, after a restart of the new writer, and in the database verifier.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import Signer
from gateway.log.reader import Reader
from gateway.log.transfer import (
    ClosedTree,
    TransferError,
    adopt_tree,
    close_tree,
    open_tree_record,
    read_tree,
)
from gateway.log.verify import entry_proof, verify_db
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"
OLD_BOX, NEW_BOX = "hall-a", "hall-b"
NEW_ORIGIN = f"{NEW_BOX}/{C}"


def _close(log: Log, new: Signer, i: int) -> ClosedTree:
    log.conn.execute("BEGIN IMMEDIATE")
    closed = close_tree(
        log.conn, log.writer, C, new_origin=NEW_ORIGIN, new_key=new.public, now=make_draft(i).at
    )
    log.conn.execute("COMMIT")
    log.writer.committed()
    return closed


def _take_over(log: Log, old_db: Path, closed: ClosedTree, new: Signer, i: int) -> bool:
    rows = read_tree(old_db, C)
    log.conn.execute("BEGIN IMMEDIATE")
    adopted = adopt_tree(log.conn, rows)
    log.writer.reload()
    if adopted:
        at = make_draft(i).at
        log.writer.append([open_tree_record(closed, new, at)])
        log.writer.checkpoint(at + timedelta(milliseconds=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    return adopted


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Signer, Signer]:
    return Signer.generate(tmp_path / "a.key"), Signer.generate(tmp_path / "b.key")


def test_the_new_instance_continues_the_tree_and_exports_one_history(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    old_key, new_key = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    for batch in range(3):  # 300 entries: past one stored block of 256 subtree hashes
        old.write([make_draft(i, customer=C) for i in range(batch * 100, batch * 100 + 100)])
    old.write([make_draft(i, customer=OTHER) for i in range(5)])
    kept = export_customer(old.path, C)
    new = Log(tmp_path / "b.db", new_key, NEW_BOX)
    new.write([make_draft(i, customer="gaertnerei-berg") for i in range(7)])

    closed = _close(old, new_key, 300)
    assert closed.size == 301 and closed.old_origin == f"{OLD_BOX}/{C}"
    assert _take_over(new, old.path, closed, new_key, 301)
    new.write([make_draft(i, customer=C) for i in range(400, 420)])

    bundle = export_customer(new.path, C)
    for pinned in (old_key.public, new_key.public):
        verdict = verify_bundle(bundle, pinned)
        assert verdict.problem is None, verdict.problem
        assert (verdict.size, verdict.covered) == (322, 322)
    since = verify_bundle(bundle, old_key.public, since=kept)
    assert since.problem is None, since.problem
    # the old instance's own export ends at its final entry and still verifies
    assert verify_bundle(export_customer(old.path, C), old_key.public).covered == 301
    # the database verifier of the new instance agrees, for every tree it holds
    report = verify_db(new.path)
    assert [(c.customer, c.problem) for c in report.chains if c.problem is not None] == []
    assert {c.customer: c.size for c in report.chains}[C] == 322

    # what a viewer shows beside each checkpoint and each entry: ✓ before the handover too
    reader = Reader.open(new.path)
    try:
        infos = reader.checkpoint_infos(customer=C, limit=1000)
        assert len(infos) == 6 and all(i.signature_valid for i in infos)  # 4 old-origin, 2 new
        chain = reader.chain_id(C)
        assert chain is not None
    finally:
        reader.close()
    conn = sqlite3.connect(new.path)
    early = entry_proof(conn, NEW_BOX, chain, 5)  # the entry view's proof (the TUI's ✓)
    conn.close()
    assert early is not None and early.signature_valid and early.head_matches

    # a restart of the new instance's writer resumes the adopted tree
    new.close()
    again = Log(tmp_path / "b.db", new_key, NEW_BOX)
    again.write([make_draft(i, customer=C) for i in range(500, 503)])
    after = verify_bundle(export_customer(again.path, C), old_key.public, since=kept)
    assert after.problem is None and after.covered == 325
    again.close()
    old.close()


def test_every_step_can_be_run_again_after_a_crash(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    old_key, new_key = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    old.write([make_draft(i, customer=C) for i in range(10)])
    first = _close(old, new_key, 10)
    second = _close(old, new_key, 11)  # the command run again: nothing new written
    assert second == first and old.writer.tree_size(C) == 11
    new = Log(tmp_path / "b.db", new_key, NEW_BOX)
    assert _take_over(new, old.path, first, new_key, 12)
    assert not _take_over(new, old.path, first, new_key, 13)  # already adopted: a no-op
    assert verify_bundle(export_customer(new.path, C), new_key.public).covered == 12
    new.close()
    old.close()


def test_a_second_destination_and_a_foreign_tree_are_refused(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    old_key, new_key = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    old.write([make_draft(i, customer=C) for i in range(10)])
    _close(old, new_key, 10)
    old.conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(TransferError, match="already handed the log to hall-b"):
        close_tree(
            old.conn,
            old.writer,
            C,
            new_origin=f"hall-c/{C}",
            new_key=new_key.public,
            now=make_draft(11).at,
        )
    old.conn.execute("ROLLBACK")
    old.writer.rolled_back()
    # the destination already holds a tree of its own for the customer: two histories
    new = Log(tmp_path / "b.db", new_key, NEW_BOX)
    new.write([make_draft(i, customer=C) for i in range(3)])
    rows = read_tree(old.path, C)
    new.conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(TransferError, match="already holds another tree"):
        adopt_tree(new.conn, rows)
    new.conn.execute("ROLLBACK")
    new.close()
    old.close()


def test_the_record_must_name_the_new_instances_current_key(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    old_key, new_key = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    old.write([make_draft(i, customer=C) for i in range(4)])
    closed = _close(old, new_key, 4)
    other = Signer.generate(tmp_path / "c.key")
    with pytest.raises(TransferError, match="handed the log to key"):
        open_tree_record(closed, other, make_draft(5).at)
    old.close()


def test_an_old_instance_without_the_tree_says_so(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    old_key, _ = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    old.write([make_draft(i, customer=OTHER) for i in range(2)])
    with pytest.raises(TransferError, match="no tree for it"):
        read_tree(old.path, C)
    old.close()
    assert sqlite3.connect(old.path).execute("SELECT count(*) FROM chains").fetchone()[0] >= 1


def test_a_compacted_tree_moves_with_its_stored_prefix_hashes(
    tmp_path: Path, keys: tuple[Signer, Signer]
) -> None:
    """Retention dropped the first 256 leaves: the adopted tree still proves what is left, from
    the same stored subtree hashes, and the bundle starts at 256 as before the move."""
    old_key, new_key = keys
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    for batch in range(3):
        old.write([make_draft(i, customer=C) for i in range(batch * 100, batch * 100 + 100)])
    old.conn.execute("BEGIN IMMEDIATE")
    assert old.writer.compact(make_draft(300).at + timedelta(days=1), chains=[C]) == 256
    old.conn.execute("COMMIT")
    old.writer.committed()
    closed = _close(old, new_key, 300)
    new = Log(tmp_path / "b.db", new_key, NEW_BOX)
    assert _take_over(new, old.path, closed, new_key, 301)
    assert not _take_over(new, old.path, closed, new_key, 302)  # resumed: same rows, a no-op
    new.write([make_draft(i, customer=C) for i in range(400, 405)])
    verdict = verify_bundle(export_customer(new.path, C), old_key.public)
    assert verdict.problem is None, verdict.problem
    assert (verdict.start, verdict.size, verdict.covered) == (256, 307, 307)
    new.close()
    old.close()
