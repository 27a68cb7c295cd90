"""What the writer does once, when it opens a log database: claim it, then close what a crash
or an older release left open.

Claiming checks that the database is this box's log (its origin, written at the first start)
and that the key given is the one that signs it now (the last row of ``keys``; a new key comes
only through a rotation, ``gateway.log.key_rotation``). Either mismatch is refused before
anything is written: entries signed under the wrong origin or key would not verify.

Closing the tail runs in one transaction at start: a chain left by 0.1.0 is sealed into its
tree's first entry (SPEC.md §5), and every tree with entries its last checkpoint does not cover
(a crash between commit and signature) is signed now, so a tree is never left behind its
signature for longer than one start.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Protocol

from gateway.errors import LogError
from gateway.log.batches import BatchWriter, commit_batch
from gateway.log.keys import Signer, fingerprint
from gateway.log.notices import seal_draft

__all__ = ["Unsealed", "claim", "close_tail"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Unsealed = tuple[str, int, bytes]  # (log name, entries of its 0.1.0 chain, the chain's head)


def claim(conn: sqlite3.Connection, signer: Signer, origin: str) -> None:
    """Record ``origin`` and ``signer``'s key in a new log; refuse a log of another box or key.

    Runs in the caller's transaction when one is open (the writer commits a fresh claim)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('origin', ?)", (origin,))
    elif row[0] != origin:
        raise LogError(f"log database: expected origin {origin!r}, found {row[0]!r}")
    keys = conn.execute("SELECT key_id FROM keys ORDER BY id").fetchall()
    if not keys:
        conn.execute(
            "INSERT INTO keys (key_id, public, added_at) VALUES (?, ?, 0)",
            (signer.key_id, signer.public.raw),
        )
    elif keys[-1][0] != signer.key_id:
        raise LogError(
            f"log database: signed by {fingerprint(keys[-1][0])}, but the key given is "
            f"{signer.fingerprint}; use the log's current key or rotate it"
        )


class OpenedWriter(BatchWriter, Protocol):
    """The part of ``LogWriter`` closing the tail uses."""

    @property
    def last_at(self) -> datetime | None: ...

    def unsealed(self) -> list[Unsealed]: ...

    def unsigned(self) -> int: ...


def close_tail(conn: sqlite3.Connection, writer: OpenedWriter) -> bool:
    """Seal chains left by 0.1.0 and sign any tail a crash left unsigned, in one commit.

    Returns whether anything was written. Times only move forward: the seal and the checkpoint
    carry now, or the newest time already in the log if the clock says earlier."""
    unsealed = writer.unsealed()
    if not unsealed and not writer.unsigned():
        return False
    now = max(datetime.now(UTC), writer.last_at or _EPOCH)
    commit_batch(
        conn, writer, [seal_draft(name, base, head, now) for name, base, head in unsealed], now
    )
    return True
