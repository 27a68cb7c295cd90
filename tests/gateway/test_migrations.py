"""Schema versions: one registry of numbered migrations for every table, applied in one
transaction when the database is opened; a database from a newer release is refused untouched."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.log.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SchemaTooNew,
    migrate,
    schema_version,
)
from gateway.messages.store import Store

RELEASE_DB = Path(__file__).resolve().parents[1] / "data" / "releases" / "0.1.0" / "einblick.db"

# Every table the gateway writes, whichever module owns it: each must come from a migration.
TABLES = {
    "schema_version",
    "meta",
    "chains",
    "atoms",
    "texts",
    "bodies",
    "entries",
    "subject_keys",
    "topics",
    "content",
    "checkpoints",
    "keys",
    "anchors",
    "outbox",
    "pseudonym_keys",
    "consent_events",
    "erasures",
    "erasure_notices",
}


def _schema(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return {
            name: sql
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema_version(conn)
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _migrate(path: Path, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, migrations)
    finally:
        conn.close()


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "old.db"
    shutil.copyfile(RELEASE_DB, copy)
    return copy


def test_the_registry_numbers_migrations_one_by_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == SCHEMA_VERSION


async def test_a_new_database_gets_every_table_at_the_current_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "new.db")
    await store.open()
    await store.close()
    tables = {
        n for n, sql in _schema(tmp_path / "new.db").items() if sql.startswith("CREATE TABLE")
    }
    assert tables == TABLES
    assert _version(tmp_path / "new.db") == SCHEMA_VERSION


def test_a_release_database_is_upgraded_to_exactly_the_schema_of_a_new_one(
    tmp_path: Path, old_db: Path
) -> None:
    assert _version(old_db) == 1
    _migrate(old_db)
    _migrate(tmp_path / "new.db")
    assert _version(old_db) == SCHEMA_VERSION
    assert _schema(old_db) == _schema(tmp_path / "new.db")


def test_a_current_database_is_left_alone(old_db: Path) -> None:
    _migrate(old_db)
    before = _digest(old_db)
    _migrate(old_db)
    assert _digest(old_db) == before


async def test_a_database_from_a_newer_release_is_refused_untouched(old_db: Path) -> None:
    conn = sqlite3.connect(old_db, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    before = _digest(old_db)
    store = Store(old_db)
    with pytest.raises(SchemaTooNew) as caught:
        await store.open()
    await store.close()
    assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    message = str(caught.value)
    assert str(old_db) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "newer release" in message
    assert _digest(old_db) == before


def _broken(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO no_such_table VALUES (1)")


BROKEN = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "a broken step", _broken))


def test_a_failing_migration_leaves_a_new_database_empty(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(StoreError) as caught:
        _migrate(path, BROKEN)
    assert f"failed in migration {len(BROKEN)} (a broken step)" in str(caught.value)
    assert "Nothing was changed" in str(caught.value)
    # Migrations 1..N ran before the broken one, in the same transaction: all rolled back.
    assert _schema(path) == {}
    assert _version(path) == 0


def test_a_failing_migration_leaves_a_release_database_as_it_was(old_db: Path) -> None:
    before = _schema(old_db)
    with pytest.raises(StoreError):
        _migrate(old_db, BROKEN)
    assert _version(old_db) == 1
    assert _schema(old_db) == before
