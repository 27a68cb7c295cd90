"""Forgetting a subject takes its content, topics, names documents and key, and nothing of
another subject; the proof rows stay, and the scrub leaves no WAL behind."""

from __future__ import annotations

from pathlib import Path

from gateway.log.forget import forget, scrub
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
TABLES = ("content", "topics", "names", "subject_keys")


def _counts(log: Log, device: str | None) -> dict[str, int]:
    found = {}
    for table in TABLES:
        where = "c.name = ?"
        params: tuple[str, ...] = (C,)
        if device is not None:
            where += " AND a.value = ?"
            params = (C, device)
        if table == "content":
            sql = (
                "SELECT count(*) FROM content t JOIN entries e ON e.seq = t.seq"
                " JOIN chains c ON c.id = e.chain_id LEFT JOIN atoms a ON a.id = e.device_id"
                f" WHERE {where}"
            )
        else:
            sql = (
                f"SELECT count(*) FROM {table} t JOIN chains c ON c.id = t.chain_id"
                f" LEFT JOIN atoms a ON a.id = t.device_id WHERE {where}"
            )
        found[table] = int(log.conn.execute(sql, params).fetchone()[0])
    return found


def _chain_and_device(log: Log, device: str) -> tuple[int, int]:
    chain_id = log.conn.execute("SELECT id FROM chains WHERE name = ?", (C,)).fetchone()[0]
    device_id = log.conn.execute("SELECT id FROM atoms WHERE value = ?", (device,)).fetchone()[0]
    return int(chain_id), int(device_id)


def test_one_device_is_forgotten_and_the_others_are_not(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(12)])
    before = _counts(log, "oven-1")
    before_other = _counts(log, "oven-2")
    assert all(before.values()) and all(before_other.values())
    entries = log.conn.execute("SELECT count(*), sum(length(hash)) FROM entries").fetchone()
    chain_id, device_id = _chain_and_device(log, "oven-1")
    log.conn.execute("BEGIN")
    erased = forget(log.conn, chain_id, device_id)
    log.conn.execute("COMMIT")
    assert erased == before["content"]
    assert _counts(log, "oven-1") == dict.fromkeys(TABLES, 0)
    assert _counts(log, "oven-2") == before_other
    # the proof stays: every entry and its leaf
    assert log.conn.execute("SELECT count(*), sum(length(hash)) FROM entries").fetchone() == entries


def test_the_whole_customer_and_the_scrub(log: Log, tmp_path: Path) -> None:
    log.write([make_draft(i, customer=C) for i in range(12)])
    chain_id, _ = _chain_and_device(log, "oven-1")
    log.conn.execute("BEGIN")
    forget(log.conn, chain_id, None)
    log.conn.execute("COMMIT")
    assert _counts(log, None) == dict.fromkeys(TABLES, 0)
    wal = Path(f"{log.path}-wal")
    assert wal.stat().st_size > 0
    assert scrub(log.conn)
    assert wal.stat().st_size == 0
    assert b"B-0001" not in log.path.read_bytes()  # the payload's badge is gone from the file
