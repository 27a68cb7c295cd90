"""The database's view of a tree is the bundle's, and what the database keeps beside the proof
(filter columns, checkpoint rows, texts, the order of rows) is checked against it."""

from __future__ import annotations

import sqlite3

from gateway.errors import ChainBroken
from gateway.log.bundle import export_customer
from gateway.log.bundle_lines import parse_bundle
from gateway.log.leaf import TreeInput
from gateway.log.stored import note_signature, rows_problem, tree_input
from gateway.log.tree import TreeInfo, tree_info
from tests.log.conftest import ORIGIN, Log, make_draft

C = "baeckerei-schmidt"


def stored(conn: sqlite3.Connection) -> tuple[TreeInfo, TreeInput, ChainBroken | None]:
    chain_id = conn.execute("SELECT id FROM chains WHERE name = ?", (C,)).fetchone()[0]
    info = tree_info(conn, int(chain_id))
    assert info is not None
    tree, problem = tree_input(conn, f"{ORIGIN}/{C}", C, info)
    return info, tree, problem


def test_the_stored_tree_is_the_exported_one(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(10)])
    _info, tree, problem = stored(log.conn)
    assert problem is None
    bundle = parse_bundle(export_customer(log.path, C)).tree
    assert tree.entries == bundle.entries and list(tree.leaves) == list(bundle.leaves)
    assert dict(tree.bodies) == dict(bundle.bodies)
    assert dict(tree.content) == dict(bundle.content)
    assert list(tree.checkpoints) == list(bundle.checkpoints)
    assert dict(tree.names) == dict(bundle.names)


def test_a_filter_column_changed_by_hand_is_named(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(10)])
    other = log.conn.execute("INSERT INTO atoms (value) VALUES ('werbung-ag')").lastrowid
    log.conn.execute(
        "UPDATE entries SET recipient_id = ? WHERE idx = 6 AND chain_id ="
        " (SELECT id FROM chains WHERE name = ?)",
        (other, C),
    )
    _info, _tree, problem = stored(log.conn)
    assert problem is not None
    assert (problem.index, problem.what) == (6, "filter columns disagree with the entry body")


def test_a_checkpoint_row_must_repeat_its_note(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(10)])
    info, tree, _ = stored(log.conn)
    assert rows_problem(log.conn, info, C, tree) is None
    log.conn.execute(
        "UPDATE checkpoints SET head = zeroblob(32) WHERE chain_id = ?", (info.chain_id,)
    )
    problem = rows_problem(log.conn, info, C, tree)
    assert problem is not None and problem.index == 9
    assert problem.what == "checkpoint row disagrees with its signed note"


def test_note_signature_is_the_boxs_first_signature_line(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(3)])
    note, signature = log.conn.execute(
        "SELECT note, signature FROM checkpoints WHERE note IS NOT NULL LIMIT 1"
    ).fetchone()
    assert note_signature(str(note)) == bytes(signature) and len(bytes(signature)) == 64
    assert note_signature("no signature\n\n") == b""
