"""The stored tree: leaves from v2 entry bytes, every 8th level kept, proofs read from disk,
the right edge restored at start, checkpoints as C2SP notes under one origin per customer."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from gateway.log.checkpoints import notes_after
from gateway.log.keys import Signer
from gateway.log.leaf import entry_bytes, tree_origin
from gateway.log.merkle import (
    leaf_hash,
    root_of_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from gateway.log.note import Checkpoint, Verifier, open_note
from gateway.log.tree import TreeHashes, tree_info
from tests.log.conftest import ORIGIN, Log, make_draft

C = "baeckerei-schmidt"


def _chain_id(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute("SELECT id FROM chains WHERE name = ?", (name,)).fetchone()[0])


def _leaves(conn: sqlite3.Connection, chain_id: int) -> list[bytes]:
    """Leaf hashes recomputed from the stored fields (not read from the hash column)."""
    rows = conn.execute(
        "SELECT e.idx, e.at, b.digest, e.source, e.commitment FROM entries e"
        " JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? ORDER BY e.idx",
        (chain_id,),
    ).fetchall()
    return [
        leaf_hash(entry_bytes(i, a, bytes(d), bytes(s), None if c is None else bytes(c)))
        for i, a, d, s, c in rows
    ]


def test_tree_root_proofs_and_stored_levels(log: Log, signer: Signer) -> None:
    n = 700  # crosses two 256-leaf blocks
    for start in range(0, n, 100):
        log.write([make_draft(i, customer=C) for i in range(start, start + 100)])
    conn = log.conn
    chain_id = _chain_id(conn, C)
    leaves = _leaves(conn, chain_id)
    assert len(leaves) == n
    root = root_of_leaf_hashes(leaves)
    assert log.writer.head(C) == (n, root)
    # level 8 only (two complete blocks of 256): one row per 256 leaves
    stored = conn.execute(
        "SELECT level, idx FROM tree_hashes WHERE chain_id = ? ORDER BY level, idx", (chain_id,)
    ).fetchall()
    assert stored == [(8, 0), (8, 1)]
    hashes = TreeHashes(conn, chain_id, 0)
    for index in (0, 255, 256, 511, 512, 699):
        proof = hashes.inclusion(index, n)
        verify_inclusion(leaves[index], index, n, proof, root)
    for old in (1, 100, 256, 300, 512, 699):
        proof = TreeHashes(conn, chain_id, 0).consistency(old, n)
        verify_consistency(old, n, root_of_leaf_hashes(leaves[:old]), root, proof)


def test_checkpoints_are_signed_notes_one_origin_per_customer(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C if i % 2 else None) for i in range(10)])
    rows = log.conn.execute(
        "SELECT c.name, k.size, k.head, k.note FROM checkpoints k JOIN chains c ON c.id ="
        " k.chain_id ORDER BY c.name"
    ).fetchall()
    assert [r[0] for r in rows] == ["_gateway", C]
    for name, size, head, note in rows:
        origin = tree_origin(ORIGIN, name)
        assert origin == f"{ORIGIN}/{name}"
        vkey = signer.note_signer(origin).verifier
        opened = open_note(note, [vkey])
        assert Checkpoint.parse(opened.text) == Checkpoint(origin, size, bytes(head))
        # the same key under another customer's name does not verify this note
        other = Verifier(f"{ORIGIN}/someone-else", vkey.sig_type, vkey.public)
        assert open_note(note, [other, vkey]).verified == (vkey,)


def test_edge_restored_after_restart_and_crash_tail_signed(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C) for i in range(300)])
    log.write([make_draft(300 + i, customer=C) for i in range(5)], checkpoint=False)
    log.close()
    reopened = Log(log.path, signer)  # a restart: the writer signs the unsigned tail at start
    try:
        conn = reopened.conn
        chain_id = _chain_id(conn, C)
        newest = conn.execute(
            "SELECT max(size) FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL",
            (chain_id,),
        ).fetchone()[0]
        assert newest == 305
        reopened.write([make_draft(400 + i, customer=C) for i in range(10)])
        leaves = _leaves(conn, chain_id)
        assert reopened.writer.head(C) == (315, root_of_leaf_hashes(leaves))
        info = tree_info(conn, chain_id)
        assert info is not None and info.base == 0 and info.legacy_head is None
        assert info.first_key == signer.key_id
    finally:
        reopened.close()


def test_rotation_record_in_every_tree(log: Log, signer: Signer, tmp_path: object) -> None:
    log.write([make_draft(i, customer=C if i % 2 else None) for i in range(6)])
    new = Signer.generate()
    log.conn.execute("BEGIN IMMEDIATE")
    last = make_draft(10, customer=C).at + timedelta(seconds=1)
    log.writer.rotate_key(new, last)
    log.writer.checkpoint(last)
    log.conn.execute("COMMIT")
    log.writer.committed()
    kinds = log.conn.execute(
        "SELECT c.name, e.idx FROM entries e JOIN chains c ON c.id = e.chain_id"
        " JOIN bodies b ON b.id = e.body_id WHERE instr(CAST(b.doc AS TEXT), 'key_rotation') ORDER BY c.name"
    ).fetchall()
    assert kinds == [("_gateway", 3), (C, 3)]
    newest = log.conn.execute("SELECT key_id FROM checkpoints ORDER BY id DESC LIMIT 2").fetchall()
    assert {bytes(k) for (k,) in newest} == {new.key_id}


def test_notes_after_feeds_a_submitter_every_signed_note_once(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C if i % 2 else None) for i in range(6)])
    first = notes_after(log.conn)
    assert [(n.customer, n.size) for n in first] == [("_gateway", 3), (C, 3)]
    assert all(n.origin == f"{ORIGIN}/{n.customer}" for n in first)
    log.write([make_draft(10, customer=C)])
    later = notes_after(log.conn, first[-1].id)
    assert [(n.customer, n.size) for n in later] == [(C, 4)]
    opened = open_note(later[0].note, [signer.note_signer(later[0].origin).verifier])
    assert Checkpoint.parse(opened.text).size == 4
