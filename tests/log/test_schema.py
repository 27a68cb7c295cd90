"""The writer's connection: WAL (readers read while it writes), full sync, secure delete (an
erased payload does not linger in free pages); a newer release's database is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import GatewayError
from gateway.log.schema import configure_writer, ensure_schema


def test_the_writer_connection_is_wal_full_sync_and_secure_delete(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "einblick.db", isolation_level=None)
    configure_writer(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_an_in_memory_database_cannot_be_the_log(tmp_path: Path) -> None:
    # WAL is refused for :memory: (journal_mode stays "memory"): said, not silently accepted.
    with pytest.raises(GatewayError, match="expected journal_mode wal, found memory"):
        configure_writer(sqlite3.connect(":memory:", isolation_level=None))


def test_the_schema_is_created_and_a_newer_one_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "einblick.db", isolation_level=None)
    ensure_schema(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"entries", "bodies", "checkpoints", "outbox", "pseudonym_keys"} <= tables
    ensure_schema(conn)  # twice is harmless
    version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
    conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
    with pytest.raises(GatewayError, match=rf"schema version {version + 1}.*newer release"):
        ensure_schema(conn)
