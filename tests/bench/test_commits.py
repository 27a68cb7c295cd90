"""The disk's share of a commit: both ways measured on real SQLite files, and printed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.bench.commits import CommitCost, measure_commits, render_commits


def test_both_ways_commit_every_batch_and_are_timed(tmp_path: Path) -> None:
    cost = measure_commits(tmp_path, commits=20, rows=5, row_bytes=100)
    for name in ("commits-full.db", "commits-normal.db"):
        with sqlite3.connect(tmp_path / name) as conn:
            assert conn.execute("SELECT count(*) FROM batch").fetchone() == (100,)
    assert (cost.commits, cost.rows) == (20, 5)
    assert 0 < cost.fsync_p50_ms <= cost.fsync_p99_ms
    assert 0 < cost.no_fsync_p50_ms <= cost.no_fsync_p99_ms


def test_the_output_names_both_ways_and_the_fsyncs_share() -> None:
    lines = list(render_commits(CommitCost(200, 10, 2.5, 9.0, 0.25, 0.75)))
    text = "\n".join(lines)
    assert "with fsync (synchronous=FULL, what Einblick runs)    2.50 /   9.00" in text
    assert "without fsync (synchronous=NORMAL)                   0.25 /   0.75" in text
    assert "the fsync costs ~2.25 ms per commit (p50), paid once per batch" in text
    # Where the COMMIT runs is said with the store's own rule, not a copy of it.
    assert "unless the last 16 (more after a slow one) took under 2 ms each" in text
