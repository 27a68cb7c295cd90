"""What the disk costs: one batch's commit with its fsync and without, on the bench's disk.

Einblick commits every batch with ``synchronous=FULL`` (``gateway.messages.store.connect``): the
entries and outbox rows are on disk before a device's message is acknowledged, across a power
cut too. This measures that commit on the directory the benchmark writes its databases to, and
the same commit with ``synchronous=NORMAL`` (WAL: no fsync at commit), so the output can say how
much of a commit is the wait for the disk. Each transaction inserts ``rows`` rows of ``row_bytes``
bytes, about a batch of log entries and outbox rows at 1,000 msg/s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.messages.commit_place import FAST_COMMITS_BEFORE_INLINE, INLINE_COMMIT_MAX_S
from gateway.messages.store import connect

__all__ = ["CommitCost", "measure_commits", "render_commits"]


@dataclass(frozen=True, slots=True)
class CommitCost:
    commits: int
    rows: int
    fsync_p50_ms: float
    fsync_p99_ms: float
    no_fsync_p50_ms: float
    no_fsync_p99_ms: float


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed_commits(
    path: Path, synchronous: str, commits: int, rows: int, row_bytes: int
) -> list[float]:
    conn = connect(path)
    try:
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY, doc BLOB)")
        took: list[float] = []
        for _ in range(commits):
            docs = [(os.urandom(row_bytes),) for _ in range(rows)]
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO batch (doc) VALUES (?)", docs)
            conn.execute("COMMIT")
            took.append(time.perf_counter() - start)
        return took
    finally:
        conn.close()


def measure_commits(
    root: Path, commits: int = 200, rows: int = 10, row_bytes: int = 300
) -> CommitCost:
    """Time ``commits`` transactions each way, in a database of their own under ``root``."""
    full = _timed_commits(root / "commits-full.db", "FULL", commits, rows, row_bytes)
    normal = _timed_commits(root / "commits-normal.db", "NORMAL", commits, rows, row_bytes)
    return CommitCost(
        commits,
        rows,
        1000 * _quantile(full, 0.5),
        1000 * _quantile(full, 0.99),
        1000 * _quantile(normal, 0.5),
        1000 * _quantile(normal, 0.99),
    )


def render_commits(cost: CommitCost) -> Iterator[str]:
    yield ""
    yield (
        f"The disk: a commit of {cost.rows} rows (WAL, {cost.commits} commits each way, in the"
        " benchmark's directory), p50 / p99 ms:"
    )
    yield (
        f"  with fsync (synchronous=FULL, what Einblick runs)  {cost.fsync_p50_ms:6.2f} /"
        f" {cost.fsync_p99_ms:6.2f}"
    )
    yield (
        f"  without fsync (synchronous=NORMAL)                 {cost.no_fsync_p50_ms:6.2f} /"
        f" {cost.no_fsync_p99_ms:6.2f}"
    )
    disk = cost.fsync_p50_ms - cost.no_fsync_p50_ms
    yield (
        f"  the fsync costs ~{disk:.2f} ms per commit (p50), paid once per batch, not per"
        " message; its wait releases the GIL. The COMMIT runs on a helper thread while messages"
        f" wait, unless the last {FAST_COMMITS_BEFORE_INLINE} (more after a slow one) took under"
        f" {INLINE_COMMIT_MAX_S * 1000:g} ms each, timed with the hand-back: then on the event"
        " loop, without the hand-over"
    )
