"""The log's SQLite schema and connection settings.

Layout, chosen for bytes on disk (an edge box keeps a year of telemetry):

- ``entries``: one narrow row per entry: integer ids for chain, body, device and recipient, the
  time in µs, three 32-byte blobs (source digest, content commitment, entry hash). Everything that
  repeats lives in ``bodies`` and ``texts`` and is referenced by id.
- ``bodies`` / ``texts``: each distinct body (the repeated part of an entry) and each distinct
  explanation text stored once, keyed by its digest.
- ``content`` / ``topics`` / ``subject_keys``: the personal, erasable part. Forgetting deletes
  these rows and nothing else.
- ``checkpoints``: signed chain heads; ``keys``: the public keys and their rotation records;
  ``anchors``: where each chain starts after compaction.

Durability: the writer runs WAL with ``synchronous=FULL``. NORMAL would survive a killed process
but may lose the last commits on power loss, and the gateway forwards a message right after its
entry commits: a lost commit would be a forward without a record (invariant 2). FULL costs one
fsync per committed batch, not per entry. ``secure_delete`` overwrites erased content with zeros.
"""

from __future__ import annotations

import sqlite3

from gateway.errors import StoreError

__all__ = ["SCHEMA_VERSION", "configure_writer", "ensure_schema"]

SCHEMA_VERSION = 1

_DDL = """
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
"""


def configure_writer(conn: sqlite3.Connection) -> None:
    """Settings for the one writer connection: WAL, synchronous=FULL, secure_delete."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"log database: expected journal_mode wal, found {mode}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if missing (idempotent) and check the schema version."""
    conn.executescript(_DDL)
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if not rows:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.commit()
    elif rows[0][0] != SCHEMA_VERSION:
        raise StoreError(
            f"log database: expected schema version {SCHEMA_VERSION}, found {rows[0][0]}"
        )
