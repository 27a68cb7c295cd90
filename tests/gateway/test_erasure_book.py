"""The book of erasures (gateway/rights/erasure_book.py), on erasures run on a real log file:
each erasure is read back with its notices, typed key for key; a recipient's acknowledgement is
recorded once and only for its own notice; the notices not acknowledged yet are what status
shows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from gateway.operations.control_model import ErasureRecord
from gateway.rights.erasure_book import (
    ErasureBook,
    ErasureRow,
    forget_requesters,
    list_erasures,
    record_ack,
    record_erasure,
    record_notice,
)
from gateway.rights.report_model import Notice
from tests.gateway.test_erasure import CUSTOMER, erasure_log, run
from tests.log.conftest import Log


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return erasure_log(tmp_path)


def test_acknowledgements_are_recorded_once_and_only_for_their_recipient(log: Log) -> None:
    done = run(log, "oven-1")
    notice = orjson.loads(done.notices[0].payload)["receipt"]["notice"]
    book = ErasureBook()
    book.load(log.conn)
    assert [u.notice for u in book.pending()] == [notice]
    [listed] = list_erasures(log.conn, CUSTOMER)
    assert listed["device"] == "oven-1" and listed["requested_by"] == "Anna Schmidt"
    assert listed["notices"][0]["delivered"] is False  # still queued
    assert not record_ack(log.conn, "energie-ag", notice, 5)  # not that recipient's notice
    assert record_ack(log.conn, "wartung-gmbh", notice, 1_000_000)
    assert record_ack(log.conn, "wartung-gmbh", notice, 9_000_000)  # a repeat keeps the first
    [listed] = list_erasures(log.conn, CUSTOMER)
    assert listed["notices"][0]["acknowledged_at"] == "1970-01-01T00:00:01+00:00"
    assert listed["notices"][0]["delivered"] is True
    book.acknowledged(notice)
    assert book.pending() == []
    assert list_erasures(log.conn, "familie-weber") == []


def test_a_listed_erasure_has_its_typed_keys_in_order(log: Log) -> None:
    # The control API's reply, `einblick erasures --json` and the portal write the row key for
    # key: the typed row is what is written, in the order it is written.
    done = run(log, "oven-1")
    [listed] = list_erasures(log.conn, CUSTOMER)
    assert list(listed) == list(ErasureRow.__annotations__)
    assert [list(n) for n in listed["notices"]] == [list(Notice.__annotations__)]
    assert listed["entry_seq"] == done.entry_seq and listed["at"].endswith("+00:00")
    # The answer adds what the book cannot know: copies an old instance keeps, as of asking.
    record = ErasureRecord.model_validate(listed).model_dump(mode="json")
    assert record == {**listed, "copies_pending": []}


def test_the_book_writes_an_erasure_its_notices_and_forgets_who_asked(log: Log) -> None:
    # What erase() writes through the book, written directly: the row, a notice whose outbox
    # row is gone (so delivered), and the requester blanked once the customer is forgotten.
    erasure_id = record_erasure(
        log.conn,
        customer=CUSTOMER,
        device=None,
        at_us=2_000_000,
        requested_by="Anna Schmidt",
        entry_seq=7,
        content=3,
        queued=2,
        keys=1,
        retained=0,
    )
    record_notice(log.conn, "n-1", erasure_id, "wartung-gmbh", 999_999)
    [listed] = list_erasures(log.conn, CUSTOMER)
    assert (listed["erasure"], listed["device"], listed["entry_seq"]) == (erasure_id, None, 7)
    assert (listed["content_erased"], listed["queued_erased"], listed["keys_destroyed"]) == (
        3,
        2,
        1,
    )
    assert listed["at"] == "1970-01-01T00:00:02+00:00"
    assert [(n["notice"], n["recipient"], n["delivered"]) for n in listed["notices"]] == [
        ("n-1", "wartung-gmbh", True)  # no such outbox row any more: it left
    ]
    forget_requesters(log.conn, CUSTOMER)
    assert list_erasures(log.conn, CUSTOMER)[0]["requested_by"] == ""
    assert list_erasures(log.conn, CUSTOMER)[0]["content_erased"] == 3  # the counts stay


def test_a_log_from_before_the_book_lists_no_erasures(tmp_path: Path) -> None:
    # A 0.1.0 log opened read-only never got the table: the report, the portal and
    # `einblick erasures` on a stopped gateway list nothing rather than fail.
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY)")
    assert list_erasures(conn) == [] and list_erasures(conn, CUSTOMER) == []
    conn.close()
