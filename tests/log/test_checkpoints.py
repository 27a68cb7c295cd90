"""The reader of stored checkpoint notes (gateway/log/checkpoints.py) on a real log: a log's
newest note with its witnesses' lines, the feed of notes after one a submitter has seen (sizes
as the notes say them, origins as ``<box>/<log>``), each log's newest checkpoint, and since when
a witness that cosigned a size has been behind."""

from __future__ import annotations

from datetime import timedelta

from gateway.log.checkpoints import (
    cosignatures,
    first_uncovered_at,
    latest_checkpoints,
    latest_note,
    notes_after,
)
from gateway.log.cosignatures import record_cosignature
from gateway.log.entry import us_from_at
from gateway.log.leaf import tree_origin
from tests.log.conftest import ORIGIN, Log, make_draft

C = "baeckerei-schmidt"
D = "spedition-weber"


def _grow(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(3)])  # checkpoint 1: C at 3
    log.write([make_draft(i, customer=D) for i in range(3, 5)])  # checkpoint 2: D at 2
    log.write([make_draft(i, customer=C) for i in range(5, 9)])  # checkpoint 3: C at 7


def test_the_newest_note_of_a_log_with_its_cosignatures(log: Log) -> None:
    assert latest_note(log.conn, C) is None
    _grow(log)
    note = latest_note(log.conn, C)
    assert note is not None
    assert note.startswith(f"{tree_origin(ORIGIN, C)}\n7\n")
    newest = next(c for c in latest_checkpoints(log.conn) if c.chain == C)
    assert newest.note == note and newest.text == note[: note.rfind("\n\n") + 1]
    line = "— witness.example c2lnbmF0dXJl\n"
    record_cosignature(
        log.conn,
        witness="witness.example+abcd1234+AQ",
        name="witness.example",
        checkpoint=newest,
        line=line,
        timestamp=7,
        at_us=1,
    )
    assert cosignatures(log.conn) == {newest.id: line}
    assert latest_note(log.conn, C) == note + line


def test_the_feed_of_notes_after_one_seen(log: Log) -> None:
    _grow(log)
    feed = notes_after(log.conn)
    assert [(n.customer, n.size) for n in feed] == [(C, 3), (D, 2), (C, 7)]
    assert all(n.origin == tree_origin(ORIGIN, n.customer) for n in feed)
    assert all(n.note.startswith(f"{n.origin}\n{n.size}\n") for n in feed)
    assert [n.id for n in notes_after(log.conn, feed[0].id)] == [feed[1].id, feed[2].id]
    assert [n.id for n in notes_after(log.conn, 0, limit=1)] == [feed[0].id]
    assert notes_after(log.conn, feed[-1].id) == []


def test_each_logs_newest_checkpoint(log: Log) -> None:
    _grow(log)
    newest = latest_checkpoints(log.conn)
    assert [(c.chain, c.size) for c in newest] == [(C, 7), (D, 2)]  # by name


def test_since_when_a_witness_that_cosigned_a_size_is_behind(log: Log) -> None:
    _grow(log)
    newest = {c.chain: c for c in latest_checkpoints(log.conn)}
    chain_id = newest[C].chain_id
    assert first_uncovered_at(log.conn, chain_id, 7) is None  # nothing newer than 7
    # The first checkpoint beyond 3 is the one at 7, signed just after the last of its drafts.
    expected = us_from_at(make_draft(8).at + timedelta(milliseconds=1))
    assert first_uncovered_at(log.conn, chain_id, 3) == expected
    assert first_uncovered_at(log.conn, chain_id, 0) == us_from_at(
        make_draft(2).at + timedelta(milliseconds=1)
    )
