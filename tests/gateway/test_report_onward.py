"""The access report built onward (``trees``: the customer's tree as the last build verified it)
says exactly what a report built from a whole verification says, is never "verified" for an
entry that does not verify, and goes back to a whole verification after ``whole_every``.

A real log file written by the log's writer with a real key (``tests.log.conftest.Log``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.log.keys import Signer
from gateway.rights.held_trees import HeldTrees
from gateway.rights.report import build_report
from tests.log.conftest import Log, make_draft

MINE = "baeckerei-schmidt"
THEIRS = "metallbau-huber"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def two_customers(tmp_path: Path) -> Log:
    """300 signed entries, two of every three MINE's (200), the rest THEIRS."""
    opened = Log(tmp_path / "log.db", Signer.generate())
    opened.write([make_draft(i, customer=MINE if i % 3 else THEIRS) for i in range(300)])
    return opened


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = two_customers(tmp_path)
    yield opened
    opened.close()


def _report(log: Log, trees: HeldTrees | None, now: datetime = NOW) -> dict[str, Any]:
    return build_report(
        log.path,
        MINE,
        policy=None,
        recipients={},
        public_key=log.signer.public,
        now=now,
        trees=trees,
    )


def test_a_report_built_onward_says_what_one_built_whole_says(log: Log) -> None:
    trees = HeldTrees()
    first = _report(log, trees)
    assert (trees.whole, trees.onward) == (1, 0)
    log.write([make_draft(i, customer=MINE, device="kuehlraum-neu") for i in range(300, 420)])
    log.write([make_draft(i, customer=MINE) for i in range(420, 425)], checkpoint=False)
    onward = _report(log, trees)
    assert (trees.whole, trees.onward) == (1, 1)
    whole = _report(log, None)
    assert onward == whole
    assert onward["verification"]["ok"] is True
    assert onward["verification"]["entries"] == first["verification"]["entries"] + 125
    assert onward["verification"]["unsigned"] == 5
    assert "kuehlraum-neu" in {d["id"] for d in onward["devices"]}


def test_a_new_entry_that_does_not_verify_is_never_reported_verified(log: Log) -> None:
    trees = HeldTrees()
    assert _report(log, trees)["verification"]["ok"] is True
    log.write([make_draft(i, customer=MINE) for i in range(300, 340)])
    conn = sqlite3.connect(log.path)
    with conn:
        conn.execute(
            "UPDATE entries SET source = zeroblob(32) WHERE idx = 210 AND chain_id ="
            " (SELECT id FROM chains WHERE name = ?)",
            (MINE,),
        )
    conn.close()
    report = _report(log, trees)
    assert report["verification"]["ok"] is False
    assert report["verification"]["problem"].startswith("entry 210 of customer baeckerei-schmidt")
    assert report == _report(log, None)
    assert trees.onward == 0  # the onward check refused; the whole one named the entry


def test_the_tree_is_verified_whole_again_after_whole_every(log: Log) -> None:
    trees = HeldTrees(whole_every=timedelta(minutes=10))
    _report(log, trees)
    log.write([make_draft(i, customer=MINE) for i in range(300, 310)])
    _report(log, trees, NOW + timedelta(minutes=9))
    assert (trees.whole, trees.onward) == (1, 1)
    log.write([make_draft(i, customer=MINE) for i in range(310, 320)])
    _report(log, trees, NOW + timedelta(minutes=10))
    assert (trees.whole, trees.onward) == (2, 1)  # ten minutes after the whole one: whole
    log.write([make_draft(i, customer=MINE) for i in range(320, 330)])
    _report(log, trees, NOW + timedelta(minutes=11))
    assert (trees.whole, trees.onward) == (2, 2)  # counted from the new whole one
