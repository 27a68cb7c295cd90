"""Names documents: committed per subject, stored apart from the bodies, erasable with proof.

What a device or a person chose (field paths, people's names, the explanation texts) is in no
body; the verifier and the bundle check each held document against its commitment, and accept a
missing one only before a signed erasure entry of its subject."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import orjson
import pytest

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.documents import NamesDocument
from gateway.log.names import names_commitment, names_salt, seal_names
from gateway.log.reader import Reader
from gateway.log.verdict import UnusableInput
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter
from tests.log.conftest import ORIGIN, T0, Log, make_draft

C = "baeckerei-schmidt"
BY = "Frau Hannelore Schmidt"


def _consent(i: int) -> object:
    """A consent entry of the customer itself (no device), naming the person who gave it."""
    return make_draft(
        i,
        device=None,
        recipient="wartung-gmbh",
        kind="consent_given",
        outcome=None,
        topic=None,
        content=None,
        shared=(),
        withheld=(),
        reason=None,
        reason_params={"by": BY},
        text_de=f"{BY} hat die Einwilligung erteilt.",
        text_en=f"{BY} gave consent.",
    )


def _first_index(conn: sqlite3.Connection, device: str) -> int:
    row = conn.execute(
        "SELECT min(e.idx) FROM entries e JOIN atoms a ON a.id = e.device_id WHERE a.value = ?",
        (device,),
    ).fetchone()
    return int(row[0])


def test_no_body_holds_a_path_a_name_or_a_text(log: Log) -> None:
    log.write([make_draft(i) for i in range(6)] + [_consent(6)])  # type: ignore[list-item]
    bodies = b"".join(bytes(d) for (d,) in log.conn.execute("SELECT doc FROM bodies"))
    for clear in (b'"badge"', b'"temp"', BY.encode(), b"Temperatur", b"Wartung GmbH"):
        assert clear not in bodies
    named = b"".join(bytes(d) for (d,) in log.conn.execute("SELECT doc FROM names"))
    for clear in (b"badge", BY.encode(), b"Temperatur"):
        assert clear in named
    assert verify_db(log.path).ok


def test_one_document_under_two_subjects_has_two_commitments() -> None:
    doc: NamesDocument = {
        "shared": ["temp"],
        "altered": [],
        "withheld": [],
        "text_de": "x",
        "text_en": "y",
    }
    one, raw = seal_names(b"\x01" * 32, doc)
    other, same_raw = seal_names(b"\x02" * 32, doc)
    assert raw == same_raw and one != other  # a guess confirmed for one subject says nothing
    assert one == names_commitment(names_salt(b"\x01" * 32), raw)
    assert seal_names(b"\x01" * 32, doc)[0] == one  # within a subject: one commitment, stored once


def test_a_names_document_deleted_without_an_erasure_is_reported_at_its_first_entry(
    log: Log,
) -> None:
    log.write([make_draft(i) for i in range(12)])
    target = log.conn.execute(
        "SELECT b.doc FROM entries e JOIN bodies b ON b.id = e.body_id"
        " JOIN atoms a ON a.id = e.device_id WHERE a.value = 'oven-1' ORDER BY e.idx LIMIT 1"
    ).fetchone()[0]
    log.conn.execute(
        "DELETE FROM names WHERE commitment = ?", (bytes.fromhex(orjson.loads(target)["names"]),)
    )
    report = verify_db(log.path)
    assert report.first is not None
    assert report.first.index == _first_index(log.conn, "oven-1")
    assert "names document removed without a signed erasure" in report.first.what


def test_a_bundle_missing_a_names_line_fails_unless_an_erasure_covers_it(log: Log) -> None:
    log.write([make_draft(i) for i in range(12)])
    bundle = export_customer(log.path, C)
    lines = bundle.splitlines(keepends=True)
    cut = b"".join(line for line in lines if b'"t":"names"' not in line)
    assert cut != bundle
    public = log.signer.public
    assert verify_bundle(bundle, public).ok
    report = verify_bundle(cut, public)
    assert report.problem is not None and report.problem.index == 0
    assert "names document removed without a signed erasure" in report.problem.what

    log.conn.execute("BEGIN")
    log.writer.erase_subject(C, T0 + timedelta(days=1), BY)
    log.writer.checkpoint(T0 + timedelta(days=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    after = export_customer(log.path, C)
    names_lines = [line for line in after.splitlines() if b'"t":"names"' in line]
    assert len(names_lines) == 1  # only the erasure entry's own, under the new key
    assert verify_bundle(after, public).ok
    assert verify_db(log.path, public_key=public).ok


def test_a_changed_names_line_is_reported_at_its_first_entry(log: Log) -> None:
    log.write([make_draft(i) for i in range(4)])
    bundle = export_customer(log.path, C)
    changed = bundle.replace(b"oven-1: Temperatur", b"oven-1: Temperatun", 1)
    assert changed != bundle
    report = verify_bundle(changed, log.signer.public)
    assert report.problem is not None and report.problem.index == 1  # oven-1's first entry
    assert report.problem.what == "names document does not match its commitment"


def test_the_reader_joins_names_and_says_when_they_were_erased(log: Log) -> None:
    log.write([make_draft(i) for i in range(6)])
    reader = Reader.open(log.path)
    try:
        before = {b.doc["device"]: b for b in reader.bodies() if b.doc.get("device")}
    finally:
        reader.close()
    assert before["oven-1"].doc["withheld"] == ["badge"]
    assert before["oven-1"].texts["de"].startswith("oven-1: Temperatur")
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(days=1), BY)
    log.conn.execute("COMMIT")
    log.writer.committed()
    reader = Reader.open(log.path)
    try:
        after = [b for b in reader.bodies() if b.doc.get("device") == "oven-1"]
    finally:
        reader.close()
    erased = [b for b in after if b.kind == "decision"]
    assert erased and all(b.doc["withheld"] == [] and b.doc.get("erased") for b in erased)
    assert all("erased on request" in b.texts["en"] for b in erased)
    assert all("auf Wunsch" in b.texts["de"] for b in erased)


def test_a_wal_a_reader_kept_from_emptying_is_emptied_at_the_next_start(log: Log) -> None:
    log.write([make_draft(i) for i in range(6)])
    assert log.writer.scrub()
    reader = sqlite3.connect(log.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entries").fetchone()  # holds a snapshot of the WAL
    log.conn.execute("PRAGMA busy_timeout = 0")  # the scrub gives up at once instead of waiting
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(days=1), BY)
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert not log.writer.scrub()
    wal = log.path.with_name(log.path.name + "-wal")
    # The zeroed page is in the WAL, the old one still in the database file.
    assert b"oven-1: Temperatur" in log.path.read_bytes() and wal.read_bytes()
    reader.execute("COMMIT")
    reader.close()
    LogWriter(log.conn, log.signer, ORIGIN)  # the gateway starts again (and signs the tail)
    for path in (log.path, wal):
        assert b"oven-1: Temperatur" not in path.read_bytes()
    assert verify_db(log.path).ok


def test_a_names_line_no_body_commits_to_or_a_repeated_one_is_refused(log: Log) -> None:
    log.write([make_draft(i) for i in range(4)] + [make_draft(5, customer="x")])
    mine = export_customer(log.path, C).splitlines(keepends=True)
    (foreign,) = [
        line
        for line in export_customer(log.path, "x").splitlines(keepends=True)
        if b'"t":"names"' in line
    ]
    own = next(line for line in mine if b'"t":"names"' in line)
    stray = verify_bundle(b"".join([mine[0], foreign, *mine[1:]]), log.signer.public)
    assert stray.problem is not None
    assert stray.problem.what == "a names document that no entry's body commits to"
    with pytest.raises(UnusableInput, match="a second names document"):
        verify_bundle(b"".join([mine[0], own, *mine[1:]]), log.signer.public)
    assert verify_bundle(b"".join(mine), log.signer.public).ok


def test_a_reader_bound_to_a_customer_never_returns_another_customers_names(log: Log) -> None:
    log.write([make_draft(1), make_draft(1, customer="x")])
    theirs = [
        bytes.fromhex(orjson.loads(doc)["names"])
        for (doc,) in log.conn.execute("SELECT doc FROM bodies")
        if orjson.loads(doc)["customer"] == "x"
    ]
    mine = Reader.open(log.path, customer=C)
    try:
        assert theirs and mine.names(theirs) == {}
    finally:
        mine.close()
    everyone = Reader.open(log.path)
    try:
        assert set(everyone.names(theirs)) == set(theirs)
    finally:
        everyone.close()


def test_names_kept_after_their_subjects_key_was_destroyed_are_reported(log: Log) -> None:
    log.write([make_draft(0), _consent(1), make_draft(2)])  # type: ignore[list-item]
    assert verify_db(log.path).ok
    # A forget that destroyed the customer's own key but left the consent's names behind.
    log.conn.execute(
        "DELETE FROM subject_keys WHERE device_id = 0"
        " AND chain_id = (SELECT id FROM chains WHERE name = ?)",
        (C,),
    )
    report = verify_db(log.path)
    assert report.first is not None and report.first.index == 1
    assert report.first.what == "names document held without its subject's key"
