"""The access report counts only entries its verification covered, read in the verification's
own read transaction; counts kept per customer (``gateway.rights.report_tally``) and extended by
the entries verified since say exactly what a count of the whole tree says, and are counted
again whenever the verification was not onward.

A real log file written by the log's writer with a real key (``tests.log.conftest.Log``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway.rights.report as report_module
from gateway.rights.held_trees import HeldTrees
from gateway.rights.report import build_report, render
from gateway.rights.report_tally import Tallies
from tests.gateway.test_report_onward import MINE, NOW, two_customers
from tests.log.conftest import Log, make_draft


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = two_customers(tmp_path)
    yield opened
    opened.close()


def _report(
    log: Log,
    trees: HeldTrees | None = None,
    tallies: Tallies | None = None,
    db: Path | None = None,
) -> dict[str, Any]:
    return build_report(
        log.path if db is None else db,
        MINE,
        policy=None,
        recipients={},
        public_key=log.signer.public,
        now=NOW,
        trees=trees,
        tallies=tallies,
    )


def _counted(report: dict[str, Any]) -> int:
    """Decisions the report counted (every device's shared, altered and withheld)."""
    return sum(d["shared"] + d["altered"] + d["withheld"] for d in report["devices"])


def _consent(i: int) -> Any:
    return make_draft(
        i,
        customer=MINE,
        kind="consent_withdrawn",
        outcome=None,
        reason=None,
        reason_params={"by": "Anna Schmidt"},
        text_de=f"Einwilligung {i} widerrufen.",
        text_en=f"Consent {i} withdrawn.",
    )


def test_an_entry_committed_after_the_verification_read_is_not_counted(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    verify = report_module.verify_customer

    def verify_then_commit(*args: Any, **kwargs: Any) -> Any:
        done = verify(*args, **kwargs)
        # The gateway commits a new entry of the customer's while the report is being built.
        log.write([make_draft(1000, customer=MINE, device="kuehlraum-neu")])
        return done

    monkeypatch.setattr(report_module, "verify_customer", verify_then_commit)
    report = _report(log)
    assert report["verification"]["entries"] == 200
    assert _counted(report) == 200  # the entry the verification did not read is not counted
    assert "kuehlraum-neu" not in {d["id"] for d in report["devices"]}
    monkeypatch.undo()
    after = _report(log)
    assert (after["verification"]["entries"], _counted(after)) == (201, 201)


def test_entries_past_where_the_verification_stopped_are_not_counted(log: Log) -> None:
    log.write([make_draft(i, customer=MINE) for i in range(300, 360)])
    conn = sqlite3.connect(log.path)
    with conn:
        conn.execute(
            "UPDATE entries SET source = zeroblob(32) WHERE idx = 210 AND chain_id ="
            " (SELECT id FROM chains WHERE name = ?)",
            (MINE,),
        )
    conn.close()
    for tallies in (None, Tallies()):
        report = _report(log, HeldTrees(), tallies)
        assert report["verification"]["ok"] is False
        assert report["verification"]["problem"].startswith("entry 210 of customer")
        assert _counted(report) == 210  # of 260: nothing from the first bad entry on


def test_kept_counts_extended_say_what_a_whole_count_says(log: Log) -> None:
    trees, tallies = HeldTrees(), Tallies()
    _report(log, trees, tallies)
    assert (tallies.counted, tallies.extended) == (1, 0)
    log.write([make_draft(i, customer=MINE, device="kuehlraum-neu") for i in range(300, 420)])
    log.write([_consent(420), make_draft(421, customer=MINE, outcome="withheld")])
    log.write([make_draft(i, customer=MINE) for i in range(422, 427)], checkpoint=False)
    extended = _report(log, trees, tallies)
    assert (trees.onward, tallies.extended) == (1, 1)
    whole = _report(log)
    assert extended == whole
    assert render(extended, "json", "en") == render(whole, "json", "en")
    assert _counted(extended) == 200 + 120 + 1 + 5
    assert [c["action"] for c in extended["consents"]] == ["withdrawn"]
    assert "kuehlraum-neu" in {d["id"] for d in extended["devices"]}


def test_counts_are_made_again_when_the_verification_is_not_onward(log: Log) -> None:
    trees, tallies = HeldTrees(), Tallies()
    _report(log, trees, tallies)
    log.write([make_draft(i, customer=MINE) for i in range(300, 330)])
    _report(log, HeldTrees(), tallies)  # a whole verification: no tree held
    assert (tallies.counted, tallies.extended) == (2, 0)
    # A tally held for one database is never extended with another's entries.
    other = Log(log.path.with_name("other.db"), log.signer)
    try:
        other.write([make_draft(i, customer=MINE) for i in range(10)])
        report = _report(log, trees, tallies, other.path)
    finally:
        other.close()
    assert _counted(report) == 10
    assert tallies.extended == 0
