"""Schema versions: one registry of numbered migrations for every table, applied in one
transaction when the database is opened; a database from a newer release is refused untouched."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime
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
from gateway.rights.consent import ConsentBook
from gateway.rights.erasure_book import list_erasures

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
    "trees",
    "tree_hashes",
    "outbox",
    "pseudonym_keys",
    "consent_events",
    "erasures",
    "erasure_notices",
    "names",
    "cosignatures",
    "witness_progress",
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


# Values a 0.1.x gateway wrote with time.time(): real seconds with microsecond digits.
_SECONDS = 1764772000.123456
_MICROS = 1764772000123456


def _at_version_2(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:2])
    assert schema_version(conn) == 2
    conn.execute(
        "INSERT INTO outbox (entry_seq, recipient, customer, device, grant_id, topic, payload,"
        " created) VALUES (1, 'cloud', 'werk', 'press', 'g', 't', x'00', ?)",
        (_SECONDS,),
    )
    conn.execute(
        "INSERT INTO outbox (entry_seq, recipient, customer, device, grant_id, topic, payload,"
        " created) VALUES (2, 'cloud', 'werk', 'press', 'g', 't', x'01', ?)",
        (_SECONDS + 1,),
    )
    conn.execute("DELETE FROM outbox WHERE id = 2")  # the newest id was sent: must not return
    conn.execute(
        # time.time() carries digits below the microsecond; datetime.fromtimestamp, the old
        # reader, rounded them to the nearest microsecond, and so does the migration.
        "INSERT INTO pseudonym_keys VALUES ('werk', 'cloud', x'aa', ?)",
        (1764772000.1234567,),
    )
    conn.execute(
        "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq)"
        " VALUES ('werk', 'g', 'withdraw', ?, 'customer', 3)",
        (_SECONDS,),
    )
    conn.execute(
        "INSERT INTO erasures VALUES (1, 'werk', NULL, ?, 'customer', 4, 1, 1, 1, 0)",
        (1700000000.000001,),
    )
    conn.execute("INSERT INTO erasure_notices VALUES ('n1', 1, 'cloud', 1, ?)", (_SECONDS,))
    conn.execute("INSERT INTO erasure_notices VALUES ('n2', 1, 'other', 2, NULL)")
    return conn


def test_version_2_real_seconds_become_integer_microseconds_exactly(tmp_path: Path) -> None:
    conn = _at_version_2(tmp_path / "v2.db")
    try:
        upgrade = migrate(conn)
        assert (upgrade.before, upgrade.after) == (2, SCHEMA_VERSION)

        def column(sql: str) -> list[tuple[object, str]]:
            return [(value, kind) for value, kind in conn.execute(sql)]

        assert column("SELECT created, typeof(created) FROM outbox") == [(_MICROS, "integer")]
        assert column("SELECT created, typeof(created) FROM pseudonym_keys") == [
            (_MICROS + 1, "integer")
        ]
        assert column("SELECT at, typeof(at) FROM consent_events") == [(_MICROS, "integer")]
        assert column("SELECT at, typeof(at) FROM erasures") == [(1700000000000001, "integer")]
        assert column("SELECT acked_at, typeof(acked_at) FROM erasure_notices ORDER BY notice") == [
            (_MICROS, "integer"),
            (None, "null"),
        ]
        # The rest of each row is untouched, and the outbox's id counter survives: a row
        # queued after the upgrade never reuses the id of one already sent.
        assert conn.execute("SELECT id, entry_seq, payload FROM outbox").fetchall() == [
            (1, 1, b"\x00")
        ]
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone() == (
            2,
        )
        assert conn.execute("SELECT notice, recipient FROM erasure_notices").fetchall() == [
            ("n1", "cloud"),
            ("n2", "other"),
        ]
    finally:
        conn.close()


def test_an_upgraded_version_2_database_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    _at_version_2(tmp_path / "v2.db").close()
    _migrate(tmp_path / "v2.db")
    _migrate(tmp_path / "new.db")
    assert _schema(tmp_path / "v2.db") == _schema(tmp_path / "new.db")


async def test_the_gateway_reads_converted_times_as_the_moments_they_were(tmp_path: Path) -> None:
    # The readers of the converted columns: a withdrawal's time and an erasure's times.
    conn = _at_version_2(tmp_path / "v2.db")
    migrate(conn)
    try:
        withdrawn = ConsentBook.withdrawn(conn)
        erased = list_erasures(conn, "werk")
    finally:
        conn.close()
    assert withdrawn == [("werk", "g", datetime(2025, 12, 3, 14, 26, 40, 123456, tzinfo=UTC))]
    assert erased[0]["at"] == "2023-11-14T22:13:20.000001+00:00"
    assert [n["acknowledged_at"] for n in erased[0]["notices"]] == [
        "2025-12-03T14:26:40.123456+00:00",
        None,
    ]
