"""The recorded consent actions (gateway/rights/consent_events.py): written in the caller's
transaction, read back latest-per-grant and in order, names blanked, holds read read-only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.rights.consent_events import (
    ConsentEvent,
    forget_names,
    held_grants,
    history,
    latest,
    record,
)
from tests.log.conftest import fresh_db

T = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def test_actions_read_back_latest_per_grant_and_in_order(tmp_path: Path) -> None:
    db = tmp_path / "einblick.db"
    conn = fresh_db(db)
    record(conn, "berg", "heating", holds=True, at=T, by="Anna", entry_seq=4, right="consent")
    later = T + timedelta(hours=1)
    record(conn, "berg", "heating", holds=False, at=later, by="Anna", entry_seq=9, right="consent")
    record(conn, "berg", "stats", holds=True, at=T, by="Ben", entry_seq=5, right="restriction")
    assert latest(conn) == {
        ("berg", "heating"): ConsentEvent("consent", False, later, "Anna", 9),
        ("berg", "stats"): ConsentEvent("restriction", True, T, "Ben", 5),
    }
    assert history(conn) == [
        ("berg", "heating", True, T, "consent"),
        ("berg", "heating", False, later, "consent"),
        ("berg", "stats", True, T, "restriction"),
    ]
    assert held_grants(db) == {("berg", "stats"): "restriction"}  # given back: not held
    forget_names(conn, "berg")
    assert {e.by for e in latest(conn).values()} == {""}
    assert held_grants(db) == {("berg", "stats"): "restriction"}  # what was done stays
    conn.close()


def test_no_log_or_a_log_from_before_the_table_holds_nothing(tmp_path: Path) -> None:
    assert held_grants(tmp_path / "absent.db") == {}
    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY)")
    old.commit()
    old.close()
    assert held_grants(tmp_path / "old.db") == {}
