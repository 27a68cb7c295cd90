"""Which customers an instance's log says it handed over or took over."""

from __future__ import annotations

from pathlib import Path

from gateway.log.keys import Signer
from gateway.log.moves import Moves, read_moves
from gateway.log.transfer import adopt_tree, close_tree, open_tree_record, read_tree
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


def _move(old: Log, new: Log, new_box: str) -> None:
    at = make_draft(50).at
    old.conn.execute("BEGIN IMMEDIATE")
    closed = close_tree(
        old.conn, old.writer, C, new_origin=f"{new_box}/{C}", new_key=new.signer.public, now=at
    )
    old.conn.execute("COMMIT")
    old.writer.committed()
    new.conn.execute("BEGIN IMMEDIATE")
    adopt_tree(new.conn, read_tree(old.path, C))
    new.writer.reload()
    new.writer.append([open_tree_record(closed, new.signer, at)])
    new.writer.checkpoint(at)
    new.conn.execute("COMMIT")
    new.writer.committed()


def test_the_old_log_names_where_the_customer_went_and_the_new_one_takes_it(
    tmp_path: Path,
) -> None:
    a = Log(tmp_path / "a.db", Signer.generate(tmp_path / "a.key"), "hall-a")
    b = Log(tmp_path / "b.db", Signer.generate(tmp_path / "b.key"), "hall-b")
    a.write([make_draft(i, customer=C) for i in range(5)])
    a.write([make_draft(i, customer="metallbau-huber") for i in range(3)])
    assert read_moves(a.path, "hall-a") == Moves()
    _move(a, b, "hall-b")
    assert read_moves(a.path, "hall-a") == Moves({C: "hall-b"}, frozenset())
    assert read_moves(b.path, "hall-b") == Moves({}, frozenset({C}))
    # the record names hall-b: another instance reading a copy of b's log takes nothing over
    assert read_moves(b.path, "hall-c").taken_over == frozenset()
    # handed on again from b, the customer is b's no longer
    c = Log(tmp_path / "c.db", Signer.generate(tmp_path / "c.key"), "hall-c")
    _move(b, c, "hall-c")
    assert read_moves(b.path, "hall-b") == Moves({C: "hall-c"}, frozenset())
    assert read_moves(c.path, "hall-c").taken_over == frozenset({C})
    for log in (a, b, c):
        log.close()


def test_an_instance_without_a_database_moved_nothing(tmp_path: Path) -> None:
    assert read_moves(tmp_path / "none.db", "hall-a") == Moves()


def test_a_log_under_a_directory_named_with_hash_and_question_mark_is_read_where_it_is(
    tmp_path: Path,
) -> None:
    """'#' and '?' in a path are escaped in the read-only URI: unescaped, SQLite would cut the
    path at '#' and open (creating it) a different file, read-write."""
    where = tmp_path / "site#1?old"
    where.mkdir()
    a = Log(where / "a.db", Signer.generate(where / "a.key"), "hall-a")
    b = Log(where / "b.db", Signer.generate(where / "b.key"), "hall-b")
    a.write([make_draft(i, customer=C) for i in range(5)])
    _move(a, b, "hall-b")  # reads a's tree read-only too (gateway.log.transfer)
    assert read_moves(a.path, "hall-a") == Moves({C: "hall-b"}, frozenset())
    assert read_moves(b.path, "hall-b") == Moves({}, frozenset({C}))
    # nothing opened (or created) at the path cut short at '#'
    assert [p.name for p in tmp_path.iterdir()] == ["site#1?old"]
    for log in (a, b):
        log.close()
