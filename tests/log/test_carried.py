"""A customer's consents, erasures and pseudonym keys move with its tree, and nobody else's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.log.keys import Signer
from gateway.log.transfer import adopt_tree, close_tree, open_tree_record, read_tree
from gateway.rights.consent import ConsentBook
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"


def _seq_of(conn: sqlite3.Connection, customer: str, idx: int) -> int:
    return int(
        conn.execute(
            "SELECT e.seq FROM entries e JOIN chains c ON c.id = e.chain_id"
            " WHERE c.name = ? AND e.idx = ?",
            (customer, idx),
        ).fetchone()[0]
    )


def _leaf(conn: sqlite3.Connection, seq: int) -> bytes:
    return bytes(conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()[0])


def test_a_withdrawal_an_erasure_and_pseudonym_keys_move_and_point_at_the_same_entries(
    tmp_path: Path,
) -> None:
    old = Log(tmp_path / "a.db", Signer.generate(tmp_path / "a.key"), "hall-a")
    new = Log(tmp_path / "b.db", Signer.generate(tmp_path / "b.key"), "hall-b")
    old.write([make_draft(i, customer=OTHER) for i in range(3)])
    old.write([make_draft(i, customer=C) for i in range(6)])
    new.write([make_draft(i, customer="gaertnerei-berg") for i in range(2)])
    consent_seq, erasure_seq = _seq_of(old.conn, C, 2), _seq_of(old.conn, C, 4)
    old.conn.executemany(
        "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq, right)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (C, "maintenance-temps", "withdraw", 1_000, "Frau Schmidt", consent_seq, "consent"),
            (OTHER, "maintenance-temps", "withdraw", 1_000, "Herr Huber", consent_seq, "consent"),
        ],
    )
    old.conn.execute(
        "INSERT INTO erasures (customer, device, at, requested_by, entry_seq, content, queued,"
        " keys, retained) VALUES (?, 'oven-1', 2000, 'Frau Schmidt', ?, 2, 0, 1, 0)",
        (C, erasure_seq),
    )
    old.conn.executemany(
        "INSERT INTO pseudonym_keys (customer, recipient, key, created) VALUES (?, ?, ?, 0)",
        [(C, "wartung-gmbh", b"k" * 32), (OTHER, "wartung-gmbh", b"o" * 32)],
    )
    at = make_draft(7).at
    old.conn.execute("BEGIN IMMEDIATE")
    closed = close_tree(
        old.conn, old.writer, C, new_origin=f"hall-b/{C}", new_key=new.signer.public, now=at
    )
    old.conn.execute("COMMIT")
    old.writer.committed()
    new.conn.execute("BEGIN IMMEDIATE")
    adopt_tree(new.conn, read_tree(old.path, C))
    new.writer.reload()
    new.writer.append([open_tree_record(closed, new.signer, at)])
    new.conn.execute("COMMIT")
    new.writer.committed()

    # the new instance's consent book holds the customer's withdrawal, and only its customer's
    assert [(c, g) for c, g, _ in ConsentBook.withdrawn(new.conn)] == [(C, "maintenance-temps")]
    (moved_seq,) = new.conn.execute("SELECT entry_seq FROM consent_events").fetchone()
    assert _leaf(new.conn, moved_seq) == _leaf(old.conn, consent_seq)  # the same signed entry
    erasure = new.conn.execute("SELECT customer, device, entry_seq FROM erasures").fetchall()
    assert [(c, d) for c, d, _ in erasure] == [(C, "oven-1")]
    assert _leaf(new.conn, erasure[0][2]) == _leaf(old.conn, erasure_seq)
    keys = new.conn.execute("SELECT customer, recipient, key FROM pseudonym_keys").fetchall()
    assert keys == [(C, "wartung-gmbh", b"k" * 32)]  # recipients see the same pseudonyms
    old.close()
    new.close()
