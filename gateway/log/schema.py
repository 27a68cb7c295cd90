"""The log's SQLite schema and connection settings.

The tables are created and upgraded by ``gateway.log.migrations`` (one registry for every table).

Layout, chosen for bytes on disk (an edge box keeps a year of telemetry):

- ``entries``: one narrow row per entry: integer ids for chain, body, device and recipient, the
  time in µs, three 32-byte blobs (source digest, content commitment, entry hash). Everything that
  repeats lives in ``bodies`` and ``names`` and is referenced by id or commitment.
- ``bodies``: each distinct body (the repeated part of an entry, no personal value in it) stored
  once, keyed by its digest; ``texts``: the explanation texts of bodies written before names
  were committed.
- ``names`` / ``content`` / ``topics`` / ``subject_keys``: the personal, erasable part, per
  subject (``gateway.log.names``). Forgetting deletes these rows and nothing else.
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
from gateway.log.migrations import migrate

__all__ = ["configure_writer", "ensure_schema"]


def configure_writer(conn: sqlite3.Connection) -> None:
    """Settings for the one writer connection: WAL, synchronous=FULL, secure_delete."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"log database: expected journal_mode wal, found {mode}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Bring every table of the database to this release's schema (``gateway.log.migrations``),
    or refuse a database written by a newer release."""
    migrate(conn)
