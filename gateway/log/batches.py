"""A batch of the log alone: one transaction that appends, signs and commits, with no outbox.

The gateway's writer thread commits its log entries together with their outbox rows
(``gateway.messages``), so ``LogWriter`` never commits by itself. What writes the log with
nothing riding along -- closing the tail at start (``gateway.log.opening``), the benchmarks and
the sample log (``gateway.log.synthetic``) -- commits through ``commit_batch``, which keeps the
writer's in-memory tree edges in step with the database either way it ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gateway.log.entry import AppendedEntry, Checkpoint, EntryDraft

__all__ = ["BatchWriter", "commit_batch"]


class BatchWriter(Protocol):
    """The part of ``LogWriter`` a batch uses."""

    def append(self, drafts: Sequence[EntryDraft]) -> list[AppendedEntry]: ...

    def checkpoint(self, now: datetime) -> list[Checkpoint]: ...

    def committed(self) -> None: ...

    def rolled_back(self) -> None: ...


def commit_batch(
    conn: sqlite3.Connection,
    writer: BatchWriter,
    drafts: Sequence[EntryDraft],
    checkpoint_at: datetime | None,
) -> None:
    """Append ``drafts``, sign a checkpoint at ``checkpoint_at`` (None: none) and commit, in
    one transaction. On any failure it rolls back and the writer reloads what is committed, so
    its tree edges never run ahead of the database; the failure is raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if drafts:
            writer.append(drafts)
        if checkpoint_at is not None:
            writer.checkpoint(checkpoint_at)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        writer.rolled_back()
        raise
    writer.committed()
