"""Verifying a customer's tree onward from the checkpoint last verified (``gateway.log.onward``).

A real log file written by the log's writer with a real key; the whole verification
(``verify_connection``) is the reference an onward one must agree with, and every case the
onward check cannot vouch for must send the caller back to it (``verify_onward`` → None).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.log.keys import Signer
from gateway.log.onward import Verified, verify_customer, verify_onward
from gateway.log.reports import VerifyReport
from gateway.log.verify import verify_connection
from tests.log.conftest import T0, Log, make_draft

MINE = "baeckerei-schmidt"
THEIRS = "metallbau-huber"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = Log(tmp_path / "log.db", Signer.generate())
    drafts = [make_draft(i, customer=MINE if i % 3 else THEIRS) for i in range(600)]
    drafts[4] = make_draft(4, customer=MINE, device="alter-ofen")  # a body no later entry has
    opened.write(drafts)
    yield opened
    opened.close()


def _read(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    conn.execute("BEGIN")
    return conn


def _held(log: Log) -> Verified:
    conn = _read(log.path)
    try:
        _, held, onward = verify_customer(
            conn, log.path, MINE, public_key=log.signer.public, held=None
        )
    finally:
        conn.close()
    assert held is not None and not onward
    return held


def _onward(log: Log, held: Verified) -> tuple[VerifyReport, Verified] | None:
    conn = _read(log.path)
    try:
        return verify_onward(
            conn, log.path, MINE, log.signer.public, held, public_key=log.signer.public
        )
    finally:
        conn.close()


def _whole(log: Log) -> VerifyReport:
    conn = _read(log.path)
    try:
        return verify_connection(conn, customer=MINE, public_key=log.signer.public)
    finally:
        conn.close()


def _facts(report: VerifyReport) -> tuple[object, ...]:
    (chain,) = report.chains
    return (
        report.ok,
        chain.customer,
        chain.start,
        chain.size,
        chain.signed,
        chain.checkpoints,
        None if chain.problem is None else str(chain.problem),
        report.trusted,
        report.pinned,
        report.key_problems,
    )


def _mine(first: int, count: int) -> list[object]:
    return [make_draft(i, customer=MINE) for i in range(first, first + count)]


def test_onward_says_what_the_whole_verification_says_and_moves_the_held_checkpoint(
    log: Log,
) -> None:
    held = _held(log)
    assert held.size == 400  # two of every three of 600 entries are the customer's
    log.write(_mine(590, 3), checkpoint=False)  # type: ignore[arg-type]
    tail = _onward(log, held)  # no checkpoint since the held one: it stays, three unsigned
    assert tail is not None and tail[1] == held
    assert _facts(tail[0]) == _facts(_whole(log)) and tail[0].chains[0].unsigned == 3
    log.write(_mine(600, 300))  # type: ignore[arg-type]
    log.write(_mine(900, 7), checkpoint=False)  # type: ignore[arg-type]
    found = _onward(log, held)
    assert found is not None
    report, moved = found
    assert _facts(report) == _facts(_whole(log))
    assert report.chains[0].unsigned == 7
    assert moved.size == 703 and moved.root != held.root
    # And on from there: the tail signed now.
    log.write(_mine(1000, 1))  # type: ignore[arg-type]
    again = _onward(log, moved)
    assert again is not None
    assert _facts(again[0]) == _facts(_whole(log))
    assert again[0].chains[0].unsigned == 0


def test_a_new_entry_changed_after_its_checkpoint_is_not_verified_onward(log: Log) -> None:
    held = _held(log)
    log.write(_mine(600, 50))  # type: ignore[arg-type]
    conn = sqlite3.connect(log.path)
    with conn:
        conn.execute(
            "UPDATE entries SET at = at + 1 WHERE idx = 420 AND chain_id ="
            " (SELECT id FROM chains WHERE name = ?)",
            (MINE,),
        )
    conn.close()
    assert _onward(log, held) is None
    whole = _whole(log)
    assert not whole.ok and whole.chains[0].problem is not None
    assert whole.chains[0].problem.index == 420


def _sql(statement: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        chain = conn.execute("SELECT id FROM chains WHERE name = ?", (MINE,)).fetchone()[0]
        changed = conn.execute(statement, {"chain": chain}).rowcount
        assert changed >= 1, statement

    return run


# Changes below the held size that the onward check's cheap tests see.
BELOW = {
    "an entry deleted below the held size": _sql(
        "DELETE FROM entries WHERE chain_id = :chain AND idx = 17"
    ),
    "the boundary entry changed": _sql(
        "UPDATE entries SET at = at + 1 WHERE chain_id = :chain AND idx = 399"
    ),
    "a stored subtree hash changed": _sql(
        "UPDATE tree_hashes SET hash = zeroblob(32) WHERE chain_id = :chain AND level = 8"
        " AND idx = 0"
    ),
    "a body only old entries name changed": _sql(
        "UPDATE bodies SET doc = CAST(replace(CAST(doc AS TEXT), 'alter-ofen', 'neuer-ofen') AS BLOB)"
        " WHERE instr(doc, CAST('alter-ofen' AS BLOB)) > 0"
    ),
    "a body made unreadable": _sql(
        "UPDATE bodies SET doc = CAST('{' AS BLOB) WHERE instr(doc, CAST('alter-ofen' AS BLOB)) > 0"
    ),
    "a checkpoint below the held size changed": _sql(
        "UPDATE checkpoints SET note = note || ' ' WHERE chain_id = :chain AND size = 400"
    ),
}


@pytest.mark.parametrize("change", list(BELOW), ids=list(BELOW))
def test_a_change_below_the_held_size_sends_back_to_the_whole_verification(
    log: Log, change: str
) -> None:
    held = _held(log)
    log.write(_mine(600, 20))  # type: ignore[arg-type]
    assert _onward(log, held) is not None  # unchanged: onward
    conn = sqlite3.connect(log.path)
    with conn:
        BELOW[change](conn)
    conn.close()
    assert _onward(log, held) is None


def test_an_erasure_or_a_key_rotation_sends_back_to_the_whole_verification(log: Log) -> None:
    held = _held(log)
    log.conn.execute("BEGIN IMMEDIATE")
    log.writer.erase_subject(f"{MINE}/oven-1", T0 + timedelta(hours=1), "Anna")
    log.conn.execute("COMMIT")
    log.writer.committed()
    log.write(_mine(600, 5))  # type: ignore[arg-type]
    assert _onward(log, held) is None
    conn = _read(log.path)
    try:
        report, after, onward = verify_customer(
            conn, log.path, MINE, public_key=log.signer.public, held=held
        )
    finally:
        conn.close()
    assert not onward and report.ok and after is not None and after.size > held.size

    log.conn.execute("BEGIN IMMEDIATE")
    log.writer.rotate_key(Signer.generate(), T0 + timedelta(hours=2))
    log.conn.execute("COMMIT")
    log.writer.committed()
    log.write(_mine(700, 5))  # type: ignore[arg-type]
    assert _onward(log, after) is None


def test_a_held_state_of_another_customer_or_key_is_not_used(log: Log) -> None:
    held = _held(log)
    conn = _read(log.path)
    try:
        assert (
            verify_onward(conn, log.path, THEIRS, log.signer.public, held, public_key=None) is None
        )
        other = Signer.generate().public
        assert verify_onward(conn, log.path, MINE, other, held, public_key=other) is None
    finally:
        conn.close()
