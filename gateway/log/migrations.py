"""The database's schema versions: one registry of numbered migrations for every table.

The version lives in ``schema_version`` (one row; a database without that table is version 0,
empty). Opening the database (``migrate``) applies every migration above the stored version, in
order, and the new version number, in one transaction: an upgrade interrupted by a crash, a full
disk or a bug leaves the database exactly as the older release wrote it, never half-upgraded. A
database whose version is above the newest migration here was written by a newer Einblick and is
refused, untouched: this code cannot know what the newer tables mean, and writing to them could
break proofs customers already hold.

Each migration is a function of the connection, written once and never edited after a release
has shipped it: a database made by that release must replay the same steps. A change to any
table is a new migration at the end of ``MIGRATIONS``, tested against the checked-in database of
the last release (tests/data/releases/).

    1  the explanation log's tables (Einblick 0.1.0 versioned only these)
    2  the gateway's own tables: outbox, pseudonym keys, consent events, erasures and notices
    3  one time unit: every time column is integer microseconds since the epoch (UTC), as the
       log's ``entries.at`` always was; the gateway's tables held real seconds until then
    4  each outbox row keeps what it was decided from (the device's topic, payload and retain
       flag) and under which policy version, so it can be decided again at send time; and
       when it may leave (a grant's ``release: end_of_unit``)
    5  consent events name the right exercised: consent (withdraw/give), objection (GDPR
       Art. 21) or restriction (Art. 18); every earlier event was a consent's
    6  one Merkle tree per log: ``trees`` (where each tree starts, the sealed 0.1.0 chain's final
       hash), ``tree_hashes`` (levels 8, 16, …), checkpoints keep their signed note verbatim,
       entries indexed by (chain, index) for proofs. Existing chains are sealed, not rewritten.
    7  ``names``: each subject's names documents (``gateway.log.names``), apart from the bodies
    8  witnesses: ``cosignatures`` (each witness's signature line on a checkpoint, verbatim) and
       ``witness_progress`` (per witness and tree: the size it last cosigned, its last refusal)
    9  a partial index of withheld entries per chain, for a customer's "what was withheld" pages
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.errors import StoreError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SchemaTooNew",
    "Upgrade",
    "migrate",
    "schema_version",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    what: str
    apply: Callable[[sqlite3.Connection], None]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What ``migrate`` did: ``before == after`` when the database was already current."""

    path: str
    before: int
    after: int


class SchemaTooNew(StoreError):
    """The database was written by a newer Einblick than this one."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"{path}: the database has schema version {found}, but this Einblick knows versions up "
            f"to {supported}: it was written by a newer release. Nothing was changed. Install that "
            "release again (or newer), or restore a backup made by this release "
            "('einblick restore')."
        )


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement inside the caller's transaction.

    ``executescript`` would COMMIT first, ending the one transaction an upgrade must be.
    ``complete_statement`` uses SQLite's own tokenizer, so a ';' inside a comment or a string
    does not split a statement."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise StoreError(f"migration script ends inside a statement: {pending.strip()[:80]!r}")


def _v1_log_tables(conn: sqlite3.Connection) -> None:
    # The explanation log as Einblick 0.1.0 wrote it (layout: gateway/log/schema.py).
    _script(
        conn,
        """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS atoms (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS texts (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    at INTEGER NOT NULL,
    body_id INTEGER NOT NULL,
    device_id INTEGER,
    recipient_id INTEGER,
    outcome INTEGER,
    source BLOB NOT NULL,
    commitment BLOB,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_chain ON entries (chain_id);
CREATE INDEX IF NOT EXISTS entries_device ON entries (device_id);
CREATE INDEX IF NOT EXISTS entries_recipient ON entries (recipient_id);
CREATE TABLE IF NOT EXISTS subject_keys (
    chain_id INTEGER NOT NULL, device_id INTEGER NOT NULL, key BLOB NOT NULL,
    PRIMARY KEY (chain_id, device_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY, chain_id INTEGER NOT NULL, device_id INTEGER NOT NULL,
    topic TEXT NOT NULL, UNIQUE (chain_id, device_id, topic));
CREATE TABLE IF NOT EXISTS content (seq INTEGER PRIMARY KEY, topic_id INTEGER, payload BLOB);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    head BLOB NOT NULL,
    at INTEGER NOT NULL,
    key_id BLOB NOT NULL,
    signature BLOB NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_chain ON checkpoints (chain_id, size);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    key_id BLOB NOT NULL UNIQUE,
    public BLOB NOT NULL,
    added_at INTEGER NOT NULL,
    prev_key_id BLOB,
    sig_old BLOB,
    sig_new BLOB
);
CREATE TABLE IF NOT EXISTS anchors (chain_id INTEGER PRIMARY KEY, checkpoint_id INTEGER NOT NULL);
""",
    )


def _v2_gateway_tables(conn: sqlite3.Connection) -> None:
    # Einblick 0.1.0 created these outside the version, each module on its own, so a 0.1.0
    # database at version 1 may or may not hold them (an offline 'key rotate' made only the log's
    # tables): IF NOT EXISTS, and the shapes are exactly 0.1.0's.
    _script(
        conn,
        """
CREATE TABLE IF NOT EXISTS outbox (
    -- AUTOINCREMENT: ids never come back after the newest rows are sent and deleted, so a
    -- forwarder's 'after id N' cursor can never skip a row.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_seq INTEGER NOT NULL,      -- the log entry that explains this release
    recipient TEXT NOT NULL,
    customer TEXT NOT NULL,
    device TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL            -- unix time the decision was committed
);
CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox(recipient, id);
CREATE INDEX IF NOT EXISTS outbox_by_device ON outbox(customer, device);
CREATE TABLE IF NOT EXISTS pseudonym_keys (
    customer TEXT NOT NULL,
    recipient TEXT NOT NULL,
    key BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (customer, recipient)
);
CREATE TABLE IF NOT EXISTS consent_events (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('give', 'withdraw')),
    at REAL NOT NULL,
    by TEXT NOT NULL,
    entry_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    device TEXT,                       -- NULL: the whole customer
    at REAL NOT NULL,                  -- unix time of the request
    requested_by TEXT NOT NULL,
    entry_seq INTEGER NOT NULL,        -- the signed erasure entry
    content INTEGER NOT NULL,          -- log entries whose content was erased
    queued INTEGER NOT NULL,           -- outbox payloads deleted
    keys INTEGER NOT NULL,             -- pseudonymisation keys destroyed
    retained INTEGER NOT NULL          -- retained messages cleared on the device broker
);
CREATE TABLE IF NOT EXISTS erasure_notices (
    notice TEXT PRIMARY KEY,           -- 32 hex digits, in the notice and its ack topic
    erasure_id INTEGER NOT NULL REFERENCES erasures(id),
    recipient TEXT NOT NULL,
    outbox_id INTEGER NOT NULL,        -- the queued notice; gone from the outbox once delivered
    acked_at REAL                      -- when the recipient's acknowledgement arrived
);
""",
    )


# (table, column, NOT NULL?) of every column migration 2 declared REAL seconds.
_SECONDS_COLUMNS = (
    ("outbox", "created", True),
    ("pseudonym_keys", "created", True),
    ("consent_events", "at", True),
    ("erasures", "at", True),
    ("erasure_notices", "acked_at", False),
)


def _v3_microseconds(conn: sqlite3.Connection) -> None:
    # SQLite cannot change a column's type, and rebuilding the tables would have to carry the
    # outbox's AUTOINCREMENT counter (a reused id could be skipped by a forwarder's cursor) and
    # the indexes across. So each column is replaced in place: a new INTEGER column computed
    # from the old one, the old one dropped, the new one renamed. round(): time.time() values
    # are within a fraction of a microsecond of the microsecond they meant (a double holds
    # ~0.2 µs at today's epoch seconds), so rounding recovers it exactly.
    for table, column, required in _SECONDS_COLUMNS:
        new = f"{column}_us"
        constraint = " NOT NULL DEFAULT 0" if required else ""
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {new} INTEGER{constraint}")
        conn.execute(
            f"UPDATE {table} SET {new} = CAST(round({column} * 1000000) AS INTEGER)"
            f" WHERE {column} IS NOT NULL"
        )
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(f"ALTER TABLE {table} RENAME COLUMN {new} TO {column}")


def _v4_outbox_sources(conn: sqlite3.Connection) -> None:
    # Rows queued by an earlier release have none of these (NULL): they are checked at send time
    # as that release did (consent, validity, hours), since what they were decided from is gone.
    conn.execute("ALTER TABLE outbox ADD COLUMN version TEXT")
    conn.execute("ALTER TABLE outbox ADD COLUMN source_topic TEXT")
    conn.execute("ALTER TABLE outbox ADD COLUMN source BLOB")
    conn.execute("ALTER TABLE outbox ADD COLUMN retain INTEGER NOT NULL DEFAULT 0")
    # µs since the epoch before which the row is held (release: end_of_unit); NULL: at once.
    conn.execute("ALTER TABLE outbox ADD COLUMN release_at INTEGER")


def _v5_consent_rights(conn: sqlite3.Connection) -> None:
    # 'withdraw' holds a grant back and 'give' releases it again, whichever right was used.
    conn.execute("ALTER TABLE consent_events ADD COLUMN right TEXT NOT NULL DEFAULT 'consent'")


def _v6_trees(conn: sqlite3.Connection) -> None:
    # Every chain that exists is sealed where it stands: its tree starts at the next index
    # (``base``) and its final hash (or, when compacted down to nothing, its anchor's signed
    # head) is kept here, for the writer to record in the tree's first entry. Old entries and
    # checkpoints are not touched, so exports made before still verify by the legacy path.
    _script(
        conn,
        """
CREATE TABLE trees (
    chain_id INTEGER PRIMARY KEY,
    base INTEGER NOT NULL,          -- entries.idx of the tree's leaf 0 (0.1.0 entries below)
    legacy_head BLOB,               -- the sealed chain's final hash; NULL: no old chain
    first_key BLOB,                 -- key id current when the tree started
    dropped INTEGER NOT NULL DEFAULT 0  -- leaves removed by compaction (multiple of 256)
);
CREATE TABLE tree_hashes (
    chain_id INTEGER NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (chain_id, level, idx)) WITHOUT ROWID;
ALTER TABLE checkpoints ADD COLUMN note TEXT;  -- the C2SP signed note; NULL: a 0.1.0 checkpoint
DROP INDEX IF EXISTS entries_chain;
CREATE INDEX entries_chain_idx ON entries (chain_id, idx);
INSERT INTO trees (chain_id, base, legacy_head, first_key)
SELECT c.id,
       coalesce((SELECT max(idx) + 1 FROM entries WHERE chain_id = c.id),
                (SELECT k.size FROM anchors a JOIN checkpoints k ON k.id = a.checkpoint_id
                 WHERE a.chain_id = c.id), 0),
       coalesce((SELECT hash FROM entries WHERE chain_id = c.id ORDER BY idx DESC LIMIT 1),
                (SELECT k.head FROM anchors a JOIN checkpoints k ON k.id = a.checkpoint_id
                 WHERE a.chain_id = c.id)),
       (SELECT key_id FROM keys ORDER BY id DESC LIMIT 1)
FROM chains c;
""",
    )


def _v7_names(conn: sqlite3.Connection) -> None:
    # What a device or a person chose (field paths, people's names, the explanation texts) moves
    # out of the bodies kept for ever into rows per subject, which forgetting deletes. Bodies and
    # texts written before stay as they are (their digests are in the chains).
    _script(
        conn,
        """
CREATE TABLE names (
    id INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,        -- 0: the customer's own subject (no device)
    commitment BLOB NOT NULL UNIQUE,   -- what the body holds
    doc BLOB NOT NULL                  -- the canonical names document
);
CREATE INDEX names_subject ON names (chain_id, device_id);
""",
    )


def _v8_witnesses(conn: sqlite3.Connection) -> None:
    # Layout and meaning: gateway/log/cosignatures.py, the one module that reads and writes them.
    _script(
        conn,
        """
CREATE TABLE cosignatures (
    checkpoint_id INTEGER NOT NULL,  -- checkpoints.id of the note the witness cosigned
    witness TEXT NOT NULL,           -- the witness's key name
    line TEXT NOT NULL,              -- its signature line exactly as received, ending in a newline
    timestamp INTEGER NOT NULL,      -- POSIX seconds, the cosignature's own time
    PRIMARY KEY (checkpoint_id, witness)
);  -- with a rowid: bundles list the lines in the order they arrived
CREATE TABLE witness_progress (
    witness TEXT NOT NULL,           -- the witness's vkey: a new key starts over
    chain_id INTEGER NOT NULL,
    size INTEGER,                    -- tree size it last cosigned (or told us); NULL: unknown
    checkpoint_id INTEGER,           -- our checkpoint it cosigned; NULL: size learned from a 409
    at INTEGER NOT NULL,             -- µs when this was recorded
    refused_status INTEGER,          -- its last refusal of this tree (HTTP status), NULL: none
    refused_reason TEXT,
    refused_at INTEGER,              -- µs
    PRIMARY KEY (witness, chain_id)
) WITHOUT ROWID;
""",
    )


def _v9_withheld_index(conn: sqlite3.Connection) -> None:
    # A customer's log filtered to what was withheld walked their whole chain when withheld
    # entries are rare (seconds per page at 100,000s of entries). Only withheld rows are indexed
    # (an index of every outcome would cost ~7 bytes per entry; this one costs about 11 bytes
    # per withheld entry, 2.7 per entry with a quarter withheld: ``python -m gateway.bench.log``).
    # On (chain_id) alone: the rowid (seq) follows in the index, so a chain's withheld entries
    # come out in log order, newest first without a sort. The reader's query says
    # ``outcome = 3`` literally, which is what lets SQLite use a partial index.
    conn.execute("CREATE INDEX entries_withheld ON entries (chain_id) WHERE outcome = 3")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the explanation log's tables", _v1_log_tables),
    Migration(2, "outbox, pseudonym keys, consent events, erasures", _v2_gateway_tables),
    Migration(3, "time columns in integer microseconds", _v3_microseconds),
    Migration(4, "outbox rows keep their source and policy version", _v4_outbox_sources),
    Migration(5, "consent events name the right exercised", _v5_consent_rights),
    Migration(6, "one Merkle tree per log; old chains sealed", _v6_trees),
    Migration(7, "names documents per subject", _v7_names),
    Migration(8, "witnesses' cosignatures and progress", _v8_witnesses),
    Migration(9, "a partial index of withheld entries per chain", _v9_withheld_index),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def _path(conn: sqlite3.Connection) -> str:
    """The main database's file name, for messages (':memory:' for an in-memory one)."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file) or ":memory:"
    return "(database)"


def schema_version(conn: sqlite3.Connection) -> int:
    """The stored version; 0 for a database with no ``schema_version`` table (a new file)."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone():
        return 0
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if len(rows) > 1:
        raise StoreError(
            f"{_path(conn)}: schema_version holds {len(rows)} rows, expected one: the database "
            "was edited by hand; restore a backup"
        )
    return int(rows[0][0]) if rows else 0


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> Upgrade:
    """Bring the database to the newest version in one transaction, or refuse a newer one.

    A current database costs two reads and no write lock. ``migrations`` is for tests."""
    path = _path(conn)
    latest = migrations[-1].version
    before = schema_version(conn)
    if before > latest:
        raise SchemaTooNew(path, before, latest)
    if before == latest:
        return Upgrade(path, before, before)
    if conn.in_transaction:
        raise StoreError(f"{path}: cannot upgrade the schema inside an open transaction")
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn)  # again, under the write lock: another process may be done
        if before > latest:
            raise SchemaTooNew(path, before, latest)
        current = before
        for migration in migrations:
            if migration.version <= current:
                continue
            try:
                migration.apply(conn)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{path}: upgrading the database from schema {before} to {latest} failed in "
                    f"migration {migration.version} ({migration.what}): {exc}. Nothing was "
                    "changed: the upgrade runs in one transaction. Keep this file and report it."
                ) from exc
            current = migration.version
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (latest,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if before:
        log.warning("%s: database upgraded from schema version %d to %d", path, before, latest)
    return Upgrade(path, before, latest)
