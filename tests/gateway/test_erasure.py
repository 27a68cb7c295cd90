"""One erasure as a transaction on a real log file (gateway/rights/erasure.py): the subject's
content and queued payloads go, earlier notices and other subjects stay, the log still
verifies, and a signed notice is queued for every recipient that got something."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from gateway.log.keys import Signer
from gateway.log.reader import Reader
from gateway.log.verify import verify_db
from gateway.messages import outbox
from gateway.rights.erasure import (
    NOTICE_GRANT,
    ErasureDone,
    ErasureRequest,
    PendingCopy,
    ack_filter,
    erase,
    notice_id_from_ack,
)
from gateway.rights.receipts import ReceiptInvalid, verify_receipt
from tests.log.conftest import T0, Log, make_draft

CUSTOMER = "baeckerei-schmidt"
PREFIXES = {"wartung-gmbh": "cloud/", "energie-ag": "", "never-sent": "x/"}
AT = T0 + timedelta(days=1)


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return erasure_log(tmp_path)


def erasure_log(tmp_path: Path) -> Log:
    log = Log(tmp_path / "einblick.db", Signer.generate(tmp_path / "log.key"))
    # Twelve decisions of the bakery (oven-0/1/2; every fourth withheld, without content) and
    # two of another customer.
    log.write([make_draft(i) for i in range(12)])
    log.write([make_draft(i, customer="familie-weber") for i in range(12, 14)])
    rows = [
        (1, "wartung-gmbh", CUSTOMER, "oven-1", "maintenance", "t/1", b"{}", 1),
        (2, "wartung-gmbh", CUSTOMER, "oven-2", "maintenance", "t/2", b"{}", 1),
        (3, "wartung-gmbh", CUSTOMER, "", NOTICE_GRANT, "einblick/erasure/x", b"{}", 1),
        (13, "wartung-gmbh", "familie-weber", "oven-1", "maintenance", "t/3", b"{}", 1),
    ]
    log.conn.execute("BEGIN IMMEDIATE")
    outbox.insert(log.conn, rows)
    log.conn.execute(
        "INSERT INTO pseudonym_keys (customer, recipient, key, created) VALUES (?, ?, ?, ?)",
        (CUSTOMER, "wartung-gmbh", b"k" * 32, 1),
    )
    log.conn.execute(
        "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (CUSTOMER, "maintenance", "withdraw", 1, "Anna Schmidt", 5),
    )
    log.conn.execute("COMMIT")
    return log


def run(log: Log, device: str | None, **options: object) -> ErasureDone:
    request = ErasureRequest(CUSTOMER, device, "Anna Schmidt", AT, retained=2)
    log.conn.execute("BEGIN IMMEDIATE")
    done = erase(
        log.conn,
        log.writer,
        None,
        log.signer,
        request,
        instance="gw-test",
        recipients=PREFIXES,
        names={"wartung-gmbh": "Wartung GmbH"},
        **options,  # type: ignore[arg-type]
    )
    log.writer.checkpoint(AT + timedelta(seconds=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    return done


def outbox_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return conn.execute("SELECT customer, device, grant_id FROM outbox ORDER BY id").fetchall()


def test_a_customer_erasure_removes_content_keys_and_queue_and_keeps_the_proof(log: Log) -> None:
    done = run(log, None, policy_recipients=["energie-ag", "not-configured"])
    # make_draft: i % 4 == 3 is withheld and carries no content; 9 of 12 had content.
    assert (done.content, done.queued, done.keys, done.retained) == (9, 2, 1, 2)
    assert done.queued_by_recipient == {"wartung-gmbh": 2}
    # Notified: who was sent something (the log) and whom the policy names, if configured.
    assert done.recipients == ["energie-ag", "wartung-gmbh"]
    # The earlier notice and the other customer's row stay queued; then one notice each.
    assert outbox_rows(log.conn) == [
        (CUSTOMER, "", NOTICE_GRANT),
        ("familie-weber", "oven-1", "maintenance"),
        (CUSTOMER, "", NOTICE_GRANT),
        (CUSTOMER, "", NOTICE_GRANT),
    ]
    assert log.conn.execute("SELECT count(*) FROM pseudonym_keys").fetchone() == (0,)
    assert log.conn.execute("SELECT by FROM consent_events").fetchall() == [("",)]
    reader = Reader.over(log.conn, log.path)
    chain = reader.chain_id(CUSTOMER)
    assert chain is not None and reader.held_content(chain) == 0
    other = reader.chain_id("familie-weber")
    assert other is not None and reader.held_content(other) == 2
    report = verify_db(log.path, public_key=log.signer.public)
    assert report.ok, report.problems


def test_the_notice_is_a_signed_receipt_naming_only_ids_and_where_to_acknowledge(
    log: Log,
) -> None:
    done = run(log, "oven-1")
    [notice] = [n for n in done.notices if n.recipient == "wartung-gmbh"]
    assert notice.topic == f"cloud/einblick/erasure/{CUSTOMER}"
    signed = verify_receipt(notice.payload, log.signer.public)
    assert signed.fields["type"] == "erasure_request" and signed.fields["scope"] == "device"
    assert (signed.fields["customer"], signed.fields["device"], signed.fields["gateway"]) == (
        CUSTOMER,
        "oven-1",
        "gw-test",
    )
    assert (
        signed.fields["acknowledge_to"] == f"cloud/einblick/erasure-ack/{signed.fields['notice']}"
    )
    assert "Anna" not in notice.payload.decode()  # the requester is not the recipient's business
    # A device erasure leaves the customer's keys and the other devices' queue alone.
    assert (done.keys, done.queued) == (0, 1)
    assert (CUSTOMER, "oven-2", "maintenance") in outbox_rows(log.conn)
    tampered = orjson.loads(notice.payload)
    tampered["receipt"]["device"] = "oven-2"
    with pytest.raises(ReceiptInvalid, match="it was altered"):
        verify_receipt(orjson.dumps(tampered), log.signer.public)


def test_the_entry_says_who_asked_what_went_and_who_was_told(log: Log) -> None:
    done = run(log, None)
    detail = Reader.over(log.conn, log.path).detail(done.entry_seq)
    row = detail.row
    assert row.kind == "erasure"
    assert row.text_en.startswith("At the request of Anna Schmidt, on 2026-03-02 08:00:00 UTC")
    assert (
        "the stored content of 9 log entries, 2 messages still waiting to be sent, "
        "1 pseudonymisation key (earlier pseudonyms can no longer be linked) and 2 retained "
        "messages on the device broker. Notified of the erasure: Wartung GmbH."
    ) in row.text_en
    assert "Anna Schmidt" in row.text_de and "Wartung GmbH" in row.text_de


def test_a_recipient_sent_data_and_no_longer_configured_is_named_as_not_notified(log: Log) -> None:
    """Its contract ended and the installer removed it: the entry said "Notified of the erasure:
    no recipient (nothing had been passed on)", false of what the log itself shows."""
    request = ErasureRequest(CUSTOMER, None, "Anna Schmidt", AT)
    log.conn.execute("BEGIN IMMEDIATE")
    done = erase(log.conn, log.writer, None, log.signer, request, instance="gw-test", recipients={})
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert done.recipients == [] and done.not_notified == ("wartung-gmbh",)
    assert done.forgotten(scrubbed=True).not_notified == ("wartung-gmbh",)
    row = Reader.over(log.conn, log.path).detail(done.entry_seq).row
    assert "nothing had been passed on" not in row.text_en
    assert "Notified of the erasure: no recipient configured here." in row.text_en
    assert row.text_en.endswith(
        "Not notified: wartung-gmbh. The log shows data this erasure concerns was passed to them "
        "before, but they are no longer configured on this gateway, so no erasure notice can "
        "reach them."
    )
    assert "es war nichts weitergegeben worden" not in row.text_de
    assert "Nicht benachrichtigt: wartung-gmbh." in row.text_de
    # Configured, it is notified as before, and nothing is said of anyone not notified.
    other = run(log, "oven-2")
    assert other.not_notified == () and other.recipients == ["wartung-gmbh"]
    assert "Not notified" not in Reader.over(log.conn, log.path).detail(other.entry_seq).row.text_en


def test_a_copy_the_erasure_did_not_reach_is_named_in_the_entry_and_the_answer(log: Log) -> None:
    """An earlier instance still keeps the customer's data after a handover: the signed entry
    says so in both languages, and the answer carries it; it never reads as erased."""
    pending = PendingCopy(instance="hall-a", why="hall-a is not running")
    done = run(log, "oven-1", copies_pending=[pending])
    row = Reader.over(log.conn, log.path).detail(done.entry_seq).row
    assert row.text_en.endswith(
        "A copy of this personal data that instance hall-a keeps after a handover until its "
        "clean-up is not erased yet: it is removed there at the clean-up, at the latest when "
        "hall-a next starts."
    )
    assert "die Instanz hall-a nach einer Übergabe" in row.text_de
    assert "ist noch nicht gelöscht" in row.text_de
    assert done.forgotten(scrubbed=True).copies_pending == (pending,)
    # without one, the entry says nothing of copies
    other = run(log, "oven-2")
    assert "copy" not in Reader.over(log.conn, log.path).detail(other.entry_seq).row.text_en
    assert verify_db(log.path).ok


def test_acknowledgement_topics() -> None:
    assert ack_filter("cloud/") == "cloud/einblick/erasure-ack/+"
    notice = "0123456789abcdef0123456789abcdef"
    assert notice_id_from_ack("cloud/", f"cloud/einblick/erasure-ack/{notice}") == notice
    assert notice_id_from_ack("cloud/", f"other/einblick/erasure-ack/{notice}") is None
    assert notice_id_from_ack("", "einblick/erasure-ack/../../etc") is None
    assert notice_id_from_ack("", f"einblick/erasure-ack/{notice.upper()}") is None
