"""``gateway.log.leftovers``: after a handover, the old instance's copy of the customer's
personal data goes, only once the new instance's database records the handover, and what stays
still verifies and still says who holds the customer (real logs, real keys, real files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.log.forget import scrub
from gateway.log.keys import Signer
from gateway.log.leftovers import closed_for, personal_rows, remove_leftovers, taken_over_by
from gateway.log.moves import read_moves
from gateway.log.schema import configure_writer
from gateway.log.verify import verify_db
from gateway.messages.outbox import erase
from gateway.operations.moved import personal_left
from gateway.rights.erasure import NOTICE_GRANT
from tests.gateway.test_cluster_view import (
    INSTANCES,
    cluster_block,
    hand_over,
    instance,
    write_tree,
)
from tests.gateway.test_handover import close_only
from tests.log.conftest import Log, make_draft

CUSTOMER = "werk-a"
NAME = "Anna Weber"  # who withdrew a consent and asked for an erasure: a person's name


@pytest.fixture
def cluster(tmp_path: Path) -> list[Path]:
    block = cluster_block({"hall-a": CUSTOMER, "hall-b": "werk-b"})
    return [instance(tmp_path, n, block) for n in INSTANCES]


def add_rights(db: Path) -> None:
    """A withdrawn consent, an erasure request and a pseudonym key of the customer, as the
    gateway records them (the rows a handover carries, ``gateway.log.carried``)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq)"
            " VALUES (?, 'monitoring', 'withdraw', 1.0, ?, 1)",
            (CUSTOMER, NAME),
        )
        conn.execute(
            "INSERT INTO erasures (customer, device, at, requested_by, entry_seq, content,"
            " queued, keys, retained) VALUES (?, 'oven-1', 1.0, ?, 2, 0, 0, 0, 0)",
            (CUSTOMER, NAME),
        )
        conn.execute(
            "INSERT INTO pseudonym_keys (customer, recipient, key, created)"
            " VALUES (?, 'wartung-gmbh', ?, 1.0)",
            (CUSTOMER, b"K" * 32),
        )
    finally:
        conn.close()


def clean(db: Path) -> int:
    """What the old instance does once the move is complete; the rows removed."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        configure_writer(conn)
        conn.execute("BEGIN IMMEDIATE")
        removed = remove_leftovers(conn, CUSTOMER).total
        conn.execute("COMMIT")
        assert scrub(conn)
        return removed
    finally:
        conn.close()


def left(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return personal_rows(conn, CUSTOMER).total
    finally:
        conn.close()


def test_the_old_copy_keeps_nothing_personal_and_still_verifies(cluster: list[Path]) -> None:
    write_tree(cluster[0], CUSTOMER, "hall-a")
    old = load_config(cluster[0]).database_path
    new = load_config(cluster[2]).database_path
    add_rights(old)
    hand_over(cluster[0], cluster[2], CUSTOMER)
    before = old.read_bytes()
    assert b"B-0000" in before and NAME.encode() in before  # content and names are there
    assert left(old) > 0

    conn = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
    try:
        closed = closed_for(conn, CUSTOMER)
    finally:
        conn.close()
    assert closed is not None
    size, to = closed
    assert to == f"hall-c/{CUSTOMER}"
    assert taken_over_by(new, CUSTOMER, f"hall-a/{CUSTOMER}", size)

    assert clean(old) > 0
    assert left(old) == 0
    after = old.read_bytes()
    assert b"B-0000" not in after and b"B-0003" not in after  # payloads overwritten
    assert NAME.encode() not in after  # who acted: gone from the old box
    assert b"K" * 32 not in after  # the pseudonymisation key
    # what stays still verifies, and still says the customer went to hall-c
    assert verify_db(old).ok, verify_db(old)
    assert read_moves(old, "hall-a").handed_out == {CUSTOMER: "hall-c"}
    # the new instance keeps everything: the whole history and the customer's rights
    assert verify_db(new).ok
    assert left(new) > 0
    assert clean(old) == 0  # again: nothing more to remove


def test_queued_rows_are_the_outbox_s_to_remove_and_counted_per_recipient(
    cluster: list[Path],
) -> None:
    """Left by a crash in the outbox: the scrubber deletes them through the outbox's own delete
    in the same transaction, and the outbox gives their room back with these counts
    (gateway/operations/moved.py), else the queues count them until the next start."""
    write_tree(cluster[0], CUSTOMER, "hall-a")
    old = load_config(cluster[0]).database_path
    conn = sqlite3.connect(old, isolation_level=None)
    try:
        for recipient, customer, payload, grant in (
            ("wartung-gmbh", CUSTOMER, b"x" * 10, "g"),
            ("wartung-gmbh", CUSTOMER, b"y" * 5, "g"),
            ("stadtwerke", CUSTOMER, b"z" * 7, NOTICE_GRANT),  # an erasure's notice: not personal
            ("stadtwerke", "werk-b", b"other customer's", "g"),
        ):
            conn.execute(
                "INSERT INTO outbox (entry_seq, recipient, customer, device, grant_id, topic,"
                " payload, created) VALUES (1, ?, ?, 'oven-1', ?, 't', ?, 1.0)",
                (recipient, customer, grant, payload),
            )
        assert personal_left(conn, CUSTOMER) > personal_rows(conn, CUSTOMER).total > 0
        conn.execute("BEGIN IMMEDIATE")
        remove_leftovers(conn, CUSTOMER)
        # The log's part gone; the queue is not its (the notice is not personal: not counted).
        assert personal_left(conn, CUSTOMER) == 2
        gone = erase(conn, CUSTOMER)  # the scrubber's: the notice too (the tree is closed)
        conn.execute("COMMIT")
        assert sorted(gone) == [("stadtwerke", 1, 7), ("wartung-gmbh", 2, 15)]
        assert conn.execute("SELECT customer FROM outbox").fetchall() == [("werk-b",)]
        assert personal_left(conn, CUSTOMER) == 0
    finally:
        conn.close()


def test_nothing_goes_before_the_new_instance_records_the_handover(cluster: list[Path]) -> None:
    write_tree(cluster[0], CUSTOMER, "hall-a")
    new = load_config(cluster[2]).database_path
    close_only(cluster[0], cluster[2], CUSTOMER)  # closed; hall-c has not adopted the tree yet
    origin = f"hall-a/{CUSTOMER}"
    assert not taken_over_by(new, CUSTOMER, origin, 5)  # no database there yet
    config = load_config(cluster[2])
    other = Log(new, Signer.load(config.signing_key_path), "hall-c")
    other.write([make_draft(i, "werk-c") for i in range(3)])  # a database without the tree
    other.close()
    assert not taken_over_by(new, CUSTOMER, origin, 5)
    write_tree(cluster[1], "werk-b", "hall-b")
    hand_over(cluster[1], cluster[2], "werk-b")  # another customer's record there
    assert not taken_over_by(new, "werk-b", origin, 5)  # a record from another origin


def test_a_record_for_another_size_does_not_count(cluster: list[Path]) -> None:
    write_tree(cluster[0], CUSTOMER, "hall-a")
    new = load_config(cluster[2]).database_path
    hand_over(cluster[0], cluster[2], CUSTOMER)
    origin = f"hall-a/{CUSTOMER}"
    assert taken_over_by(new, CUSTOMER, origin, 5)
    assert not taken_over_by(new, CUSTOMER, origin, 4)
    assert not taken_over_by(new, CUSTOMER, f"hall-b/{CUSTOMER}", 5)


def test_content_removed_where_the_tree_goes_on_is_still_found(cluster: list[Path]) -> None:
    """Only a closed copy may lack its content: the instance continuing the tree may not."""
    write_tree(cluster[0], CUSTOMER, "hall-a")
    new = load_config(cluster[2]).database_path
    hand_over(cluster[0], cluster[2], CUSTOMER)
    conn = sqlite3.connect(new, isolation_level=None)
    try:
        conn.execute("DELETE FROM content WHERE seq = (SELECT min(seq) FROM content)")
    finally:
        conn.close()
    report = verify_db(new)
    assert not report.ok
    assert "content removed without a signed erasure" in str(report)


def test_a_database_under_a_hash_and_question_mark_is_read_where_it_is(tmp_path: Path) -> None:
    """The new instance's database is read through an escaped read-only URI: unescaped, '#'
    would cut its path short and the record would never be found there (the old copy kept for
    ever), while SQLite created an empty database at the cut path."""
    root = tmp_path / "site#1?b"
    root.mkdir()
    block = cluster_block({"hall-a": CUSTOMER, "hall-b": "werk-b"})
    cluster = [instance(root, n, block) for n in INSTANCES]
    write_tree(cluster[0], CUSTOMER, "hall-a")
    new = load_config(cluster[2]).database_path
    hand_over(cluster[0], cluster[2], CUSTOMER)
    assert taken_over_by(new, CUSTOMER, f"hall-a/{CUSTOMER}", 5)
    assert verify_db(new).ok
    assert [p.name for p in tmp_path.iterdir()] == ["site#1?b"]
