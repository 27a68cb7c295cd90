"""Tamper tests: every kind of change to the stored log is detected at the exact entry index."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.log.keys import Signer
from gateway.log.leaf import entry_leaf, tree_origin
from gateway.log.note import Checkpoint, sign_note
from gateway.log.verify import verify_db
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
TARGET = 9  # an entry of C that carries content (see make_draft)


@pytest.fixture
def db(log: Log) -> Path:
    for batch in range(4):
        drafts = []
        for i in range(batch * 12, batch * 12 + 12):
            drafts.append(make_draft(i, customer=C if i % 2 == 0 else "metallbau-huber"))
        log.write(drafts)
    log.write([make_draft(100 + i, customer=C) for i in range(3)], checkpoint=False)
    assert verify_db(log.path).ok
    return log.path


def seq_of(conn: sqlite3.Connection, index: int, customer: str = C) -> int:
    row = conn.execute(
        "SELECT seq FROM entries e JOIN chains c ON c.id = e.chain_id WHERE c.name = ? AND idx = ?",
        (customer, index),
    ).fetchone()
    return int(row[0])


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x01]) + value[1:]


def first_of_chain_where(conn: sqlite3.Connection, condition: str, *params: object) -> int:
    row = conn.execute(
        "SELECT min(idx) FROM entries e JOIN chains c ON c.id = e.chain_id"
        f" WHERE c.name = ? AND {condition}",
        (C, *params),
    ).fetchone()
    return int(row[0])


def _entry_column(column: str) -> Callable[[sqlite3.Connection], int]:
    def tamper(conn: sqlite3.Connection) -> int:
        seq = seq_of(conn, TARGET)
        (value,) = conn.execute(f"SELECT {column} FROM entries WHERE seq = ?", (seq,)).fetchone()
        changed = flip(value) if isinstance(value, bytes) else value + 1
        conn.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?", (changed, seq))
        return TARGET

    return tamper


def _body_doc(conn: sqlite3.Connection) -> int:
    body_id = conn.execute("SELECT body_id FROM entries WHERE seq = ?", (seq_of(conn, TARGET),))
    (bid,) = body_id.fetchone()
    doc = conn.execute("SELECT doc FROM bodies WHERE id = ?", (bid,)).fetchone()[0]
    conn.execute(
        "UPDATE bodies SET doc = ? WHERE id = ?", (doc.replace(b"Wartung", b"Wartunh"), bid)
    )
    return first_of_chain_where(conn, "body_id = ?", bid)


def _text(conn: sqlite3.Connection) -> int:
    (bid,) = conn.execute(
        "SELECT body_id FROM entries WHERE seq = ?", (seq_of(conn, TARGET),)
    ).fetchone()
    doc = conn.execute("SELECT doc FROM bodies WHERE id = ?", (bid,)).fetchone()[0]
    digest = bytes.fromhex(__import__("orjson").loads(doc)["text_de"])
    conn.execute("UPDATE texts SET text = text || '!' WHERE digest = ?", (digest,))
    return first_of_chain_where(conn, "body_id = ?", bid)


def _payload(conn: sqlite3.Connection) -> int:
    seq = seq_of(conn, TARGET)
    (payload,) = conn.execute("SELECT payload FROM content WHERE seq = ?", (seq,)).fetchone()
    conn.execute("UPDATE content SET payload = ? WHERE seq = ?", (flip(payload), seq))
    return TARGET


def _topic(conn: sqlite3.Connection) -> int:
    (tid,) = conn.execute(
        "SELECT topic_id FROM content WHERE seq = ?", (seq_of(conn, TARGET),)
    ).fetchone()
    conn.execute("UPDATE topics SET topic = topic || 'x' WHERE id = ?", (tid,))
    return first_of_chain_where(conn, "seq IN (SELECT seq FROM content WHERE topic_id = ?)", tid)


def _subject_key(conn: sqlite3.Connection) -> int:
    (dev,) = conn.execute(
        "SELECT device_id FROM entries WHERE seq = ?", (seq_of(conn, TARGET),)
    ).fetchone()
    conn.execute(
        "UPDATE subject_keys SET key = zeroblob(32) WHERE device_id = ? AND chain_id ="
        " (SELECT id FROM chains WHERE name = ?)",
        (dev, C),
    )
    return first_of_chain_where(conn, "device_id = ? AND commitment IS NOT NULL", dev)


def _device_name(conn: sqlite3.Connection) -> int:
    (dev,) = conn.execute(
        "SELECT device_id FROM entries WHERE seq = ?", (seq_of(conn, TARGET),)
    ).fetchone()
    conn.execute("UPDATE atoms SET value = value || 'x' WHERE id = ?", (dev,))
    return first_of_chain_where(conn, "device_id = ?", dev)


def _second_checkpoint(conn: sqlite3.Connection) -> tuple[int, int, str]:
    cid, size, note = conn.execute(
        "SELECT id, size, note FROM checkpoints WHERE chain_id ="
        " (SELECT id FROM chains WHERE name = ?) ORDER BY size LIMIT 1 OFFSET 1",
        (C,),
    ).fetchone()
    return int(cid), int(size), str(note)


def _checkpoint_column(column: str) -> Callable[[sqlite3.Connection], int]:
    """A column kept beside the signed note (what viewers read) changed."""

    def tamper(conn: sqlite3.Connection) -> int:
        cid, size, _ = _second_checkpoint(conn)
        (value,) = conn.execute(f"SELECT {column} FROM checkpoints WHERE id = ?", (cid,)).fetchone()
        changed = flip(value) if isinstance(value, bytes) else value + 1
        conn.execute(f"UPDATE checkpoints SET {column} = ? WHERE id = ?", (changed, cid))
        return size - 1

    return tamper


def _checkpoint_note_root(conn: sqlite3.Connection) -> int:
    cid, size, note = _second_checkpoint(conn)
    lines = note.split("\n")
    lines[2] = base64.b64encode(flip(base64.b64decode(lines[2]))).decode()
    conn.execute("UPDATE checkpoints SET note = ? WHERE id = ?", ("\n".join(lines), cid))
    return size - 1


def _checkpoint_note_signature(conn: sqlite3.Connection) -> int:
    cid, size, note = _second_checkpoint(conn)
    head, _, sig = note.rpartition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    conn.execute(
        "UPDATE checkpoints SET note = ? WHERE id = ?",
        (f"{head} {base64.b64encode(bytes(raw)).decode()}\n", cid),
    )
    return size - 1


def _delete(conn: sqlite3.Connection) -> int:
    conn.execute("DELETE FROM entries WHERE seq = ?", (seq_of(conn, TARGET),))
    return TARGET


def _swap(conn: sqlite3.Connection) -> int:
    a, b = seq_of(conn, TARGET), seq_of(conn, TARGET + 1)
    conn.execute("UPDATE entries SET seq = -1 WHERE seq = ?", (a,))
    conn.execute("UPDATE entries SET seq = ? WHERE seq = ?", (a, b))
    conn.execute("UPDATE entries SET seq = ? WHERE seq = -1", (b,))
    return TARGET


def _insert_forged(conn: sqlite3.Connection) -> int:
    """A forged entry claiming index TARGET, correctly hashed onto its predecessor."""
    seq = seq_of(conn, TARGET)
    row = list(conn.execute("SELECT * FROM entries WHERE seq = ?", (seq,)).fetchone())
    body = conn.execute("SELECT digest FROM bodies WHERE id = ?", (row[4],)).fetchone()[0]
    row[0] = conn.execute("SELECT max(seq) + 1 FROM entries").fetchone()[0]
    row[3] += 5  # a different time, correctly hashed as leaf TARGET
    row[10] = entry_leaf(TARGET, row[3], body, row[8], row[9])
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
    return TARGET


def _truncate(conn: sqlite3.Connection) -> int:
    signed = conn.execute(
        "SELECT max(size) FROM checkpoints WHERE chain_id = (SELECT id FROM chains WHERE name = ?)",
        (C,),
    ).fetchone()[0]
    conn.execute(
        "DELETE FROM entries WHERE chain_id = (SELECT id FROM chains WHERE name = ?) AND idx >= ?",
        (C, signed - 4),
    )
    return int(signed) - 4


TAMPERS: dict[str, Callable[[sqlite3.Connection], int]] = {
    "entry at": _entry_column("at"),
    "entry idx": _entry_column("idx"),
    "entry source digest": _entry_column("source"),
    "entry commitment": _entry_column("commitment"),
    "entry hash": _entry_column("hash"),
    "entry body id": _entry_column("body_id"),
    "entry device id": _entry_column("device_id"),
    "entry recipient id": _entry_column("recipient_id"),
    "entry outcome": _entry_column("outcome"),
    "body document": _body_doc,
    "explanation text": _text,
    "content payload": _payload,
    "content topic": _topic,
    "subject key": _subject_key,
    "device name": _device_name,
    "checkpoint note root": _checkpoint_note_root,
    "checkpoint note signature": _checkpoint_note_signature,
    "checkpoint head column": _checkpoint_column("head"),
    "checkpoint size column": _checkpoint_column("size"),
    "deleted row": _delete,
    "swapped rows": _swap,
    "forged row": _insert_forged,
    "truncated tail": _truncate,
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tamper_is_detected_at_the_exact_entry(db: Path, name: str) -> None:
    conn = sqlite3.connect(db)
    expected_index = TAMPERS[name](conn)
    conn.commit()
    conn.close()
    report = verify_db(db)
    assert not report.ok, name
    problem = report.first
    assert problem is not None
    assert (problem.customer, problem.index) == (C, expected_index), str(problem)
    assert f"entry {expected_index} of customer {C}" in str(problem)
    assert "expected" in str(problem) and "found" in str(problem)


def test_renamed_chain_fails_at_its_first_entry(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE chains SET name = 'baeckerei-schmitt' WHERE name = ?", (C,))
    conn.commit()
    conn.close()
    problem = verify_db(db).first
    assert problem is not None and problem.index == 0


def test_replaced_key_is_detected_against_the_pinned_key(db: Path, signer: Signer) -> None:
    """Whoever rewrites the key rows and re-signs every checkpoint with their own key fools an
    unpinned check; the key the customer pinned does not."""
    attacker = Signer.generate()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE keys SET key_id = ?, public = ?", (attacker.key_id, attacker.public.raw))
    conn.execute("UPDATE trees SET first_key = ?", (attacker.key_id,))
    box = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()[0]
    rows = conn.execute(
        "SELECT k.id, c.name, k.note FROM checkpoints k JOIN chains c ON c.id = k.chain_id"
    ).fetchall()
    for cid, name, note in rows:
        origin = tree_origin(box, name)
        text = Checkpoint.parse(note[: note.find("\n\n") + 1]).text
        forged = sign_note(text, [attacker.note_signer(origin)])
        signature = base64.b64decode(forged.rsplit(" ", 1)[1])[4:]
        conn.execute(
            "UPDATE checkpoints SET key_id = ?, note = ?, signature = ? WHERE id = ?",
            (attacker.key_id, forged, signature, cid),
        )
    conn.commit()
    conn.close()
    assert verify_db(db).ok  # unpinned, a wholesale re-signing cannot be told apart ...
    report = verify_db(db, public_key=signer.public, customer=C)  # ... a pinned key tells
    problem = report.first
    assert problem is not None
    assert problem.index == 0
    assert "not linked to the key you trust" in problem.what
    assert attacker.fingerprint in problem.found


def test_key_row_replaced_without_resigning_fails_unpinned(db: Path) -> None:
    attacker = Signer.generate()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE keys SET key_id = ?, public = ?", (attacker.key_id, attacker.public.raw))
    conn.commit()
    conn.close()
    report = verify_db(db)
    assert not report.ok
    assert report.first is not None and "key the log started with" in report.first.what


def test_unsigned_tail_is_reported(db: Path) -> None:
    report = verify_db(db, customer=C)
    assert report.ok
    assert report.unsigned == 3
    assert "3 unsigned" in report.summary()
