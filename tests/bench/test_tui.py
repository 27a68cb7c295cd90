"""The TUI's benchmark (gateway/bench/tui.py) on a small log: building reuses what a database
already holds; a run opens the real app on it, scrolls to the first row and follows a writer in
another process, reports figures it measured, and says PASS or FAIL exactly as they say."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gateway.bench.tui import build, main, rss_mb
from gateway.log.reader import Reader


def _count(path: Path) -> int:
    reader = Reader.open(path)
    try:
        return reader.count()
    finally:
        reader.close()


def test_build_writes_what_is_missing_and_reuses_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "einblick.db"
    build(path, 300)
    assert _count(path) == 300
    build(path, 300)  # nothing missing: nothing written
    assert _count(path) == 300
    build(path, 450)
    assert _count(path) == 450


def test_a_run_opens_scrolls_follows_and_says_pass_or_fail_as_its_figures_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "einblick.db"
    code = main(
        ["--entries", "200", "--db", str(db), "--rate", "100", "--seconds", "0.5", "--pages", "3"]
    )
    out, err = capsys.readouterr()
    assert f"log: {db} (200 entries;" in out
    figures = {
        name.strip(): float(value.replace(",", ""))
        for name, value in (line.split(":", 1) for line in out.splitlines()[1:])
    }
    assert figures["rows"] == 200  # the whole log was open
    written = _count(db) - 200
    assert written > 0  # the writer process appended while the app followed
    assert 0 < figures["follow_rows_added"] <= written
    for key in ("open_s", "page_up_ms_median", "page_up_ms_max", "home_ms", "lag_s_max"):
        assert math.isfinite(figures[key]) and figures[key] >= 0, key
    assert figures["rss_open_mb"] > 0 and rss_mb() > 0
    ok = figures["open_s"] < 2.0 and figures["lag_s_max"] < 1.0
    assert code == (0 if ok else 1)
    assert ("PASS" if ok else "FAIL: open under 2 s and lag under 1 s expected") in err
