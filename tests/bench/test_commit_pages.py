"""What one commit writes, page by page, on real SQLite files with the gateway's settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.bench.commit_pages import CommitPages, main, measure_pages, render_pages, wal_pages


def test_each_commit_is_counted_by_the_tables_and_indexes_it_writes(tmp_path: Path) -> None:
    result = measure_pages(tmp_path, batch=1, commits=40, warm_up=50)
    # A message's commit writes its entry, its content, the entry's three indexes and the outbox
    # row with its two indexes, and AUTOINCREMENT's counter row: one page each, at least.
    for name in (
        "entries",
        "content",
        "entries_chain_idx",
        "entries_device",
        "entries_recipient",
        "outbox",
        "outbox_by_recipient",
        "outbox_by_device",
    ):
        assert result.frames[name] >= 1.0, name
    assert result.frames["sqlite_sequence"] >= 1.0
    assert 9.0 <= result.total < 13.0
    assert result.delete_frames["outbox"] >= 1.0
    assert result.user_us > 0 and result.sys_us > 0


def test_wal_pages_reads_the_page_number_of_each_frame(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE a (x)")
    conn.execute("CREATE TABLE b (x)")
    wal = tmp_path / "t.db-wal"
    before = len(wal_pages(wal, 4096, 0))
    conn.execute("INSERT INTO b VALUES (1)")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'b'").fetchone()[0]
    assert wal_pages(wal, 4096, before) == [root]
    conn.close()


def test_the_output_names_frames_per_commit_and_cpu() -> None:
    lines = list(
        render_pages(CommitPages(1, 100, {"entries": 1.5, "outbox": 1.0}, {"outbox": 1.0}, 50, 70))
    )
    assert lines[0].endswith("2.50 WAL frames per commit")
    assert "  entries                        1.50" in lines
    assert "The forwarder's delete of sent rows: 1.00 WAL frames per commit" in lines
    assert lines[-1].endswith("user 50 µs, sys 70 µs, total 120 µs")


def test_the_command_prints_both_runs(tmp_path: Path) -> None:
    printed: list[str] = []
    assert main(["--commits", "20", "--dir", str(tmp_path)], printed.append) == 0
    assert "WAL frames per commit" in printed[0]
    assert printed[-1].startswith("CPU per commit")
