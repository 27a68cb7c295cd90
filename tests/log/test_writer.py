"""The writer: transactions, chains, interning, forgetting, key rotation, compaction."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from gateway.errors import EntryInvalid, LogError
from gateway.log import writer as writer_module
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.entry import EntryDraft, draft_from_decision, us_from_at
from gateway.log.keys import Signer
from gateway.log.merkle import root_of_leaf_hashes
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter
from policies.decision import Alteration, Decision, LegalBasis, Outcome, Reason
from tests.log.conftest import ORIGIN, T0, Log, make_draft

C = "baeckerei-schmidt"


def test_chains_are_per_customer_and_verify(log: Log) -> None:
    log.write([make_draft(i, customer=C if i % 2 else None) for i in range(20)])
    report = verify_db(log.path)
    assert report.ok, report.summary()
    sizes = {c.customer: c.size for c in report.chains}
    assert sizes == {C: 10, "_gateway": 10}


def test_append_returns_positions_and_hashes(log: Log) -> None:
    log.conn.execute("BEGIN")
    out = log.writer.append([make_draft(0), make_draft(1, customer="x"), make_draft(2)])
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert [(e.seq, e.customer, e.index) for e in out] == [(1, C, 0), (2, "x", 0), (3, C, 1)]
    # the head of a log is its Merkle root over the entries' leaf hashes
    assert log.writer.head(C) == (2, root_of_leaf_hashes([out[0].entry_hash, out[2].entry_hash]))


def test_each_entry_of_a_batch_keeps_its_own_time(log: Log) -> None:
    """The writer converts a batch's shared decision time once; a different time, shared or
    not, is converted again (times never go backwards in a chain: later ones only)."""
    shared = T0 + timedelta(seconds=1)
    times = [T0, shared, shared, shared + timedelta(microseconds=7), shared]
    log.write([make_draft(i, at=at) for i, at in enumerate(times)], checkpoint=False)
    stored = [row[0] for row in log.conn.execute("SELECT at FROM entries ORDER BY seq")]
    us = [us_from_at(at) for at in times]
    assert stored == [us[0], us[1], us[1], us[3], us[3]]  # the last: not before the one above
    assert verify_db(log.path).ok


def test_last_at_is_the_newest_committed_time_and_moves_only_with_a_commit(log: Log) -> None:
    # The gateway's clock asks for it every batch (gateway/messages/clock.py): it is kept, and
    # must follow each commit, not an appended entry that was not committed.
    assert log.writer.last_at is None
    first, second = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    log.write([make_draft(0, at=first)], checkpoint=False)
    assert log.writer.last_at == first
    log.conn.execute("BEGIN")
    log.writer.append([make_draft(1, at=second)])
    assert log.writer.last_at == first  # not committed yet
    log.conn.execute("ROLLBACK")
    log.writer.rolled_back()
    assert log.writer.last_at == first
    log.write([make_draft(2, at=second)], checkpoint=False)
    assert log.writer.last_at == second


def test_rollback_discards_pending_heads(log: Log) -> None:
    log.write([make_draft(0)])
    log.conn.execute("BEGIN")
    log.writer.append([make_draft(1), make_draft(2, customer="new-customer")])
    log.conn.execute("ROLLBACK")
    log.writer.rolled_back()
    log.write([make_draft(3), make_draft(4, customer="new-customer")])
    assert verify_db(log.path).ok
    assert log.writer.head(C)[0] == 2


def _rolled_back_and_read_back_failing(
    log: Log, monkeypatch: pytest.MonkeyPatch, drafts: list[EntryDraft]
) -> None:
    """``drafts`` appended and rolled back, and the writer's reading back failing (a disk that
    failed the COMMIT and then the read)."""
    log.conn.execute("BEGIN")
    log.writer.append(drafts)
    log.conn.execute("ROLLBACK")

    def failing(*args: object, **kwargs: object) -> object:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(writer_module, "open_tree", failing)
        with pytest.raises(sqlite3.OperationalError):
            log.writer.rolled_back()


def test_a_rollback_whose_reading_back_fails_writes_nothing_from_what_it_left(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails the COMMIT and then the reading back: the rolled-back transaction's
    tree edges, chains and ids (of a new customer, new devices) must not be written from, or
    entries would chain onto leaves that do not exist or name rows another insert now holds."""
    log.write([make_draft(0)])
    _rolled_back_and_read_back_failing(
        log, monkeypatch, [make_draft(1), make_draft(2, customer="new-customer", device="oven-9")]
    )
    # Another new customer and device first (they take the ids the rolled-back rows had), then
    # the ones rolled back.
    log.write([make_draft(3, customer="other-customer", device="oven-8")])
    log.write([make_draft(4, customer="new-customer", device="oven-9"), make_draft(5)])
    report = verify_db(log.path)
    assert report.ok, report.summary()
    sizes = {c.customer: c.size for c in report.chains if c.customer != "_gateway"}
    assert sizes == {C: 2, "other-customer": 1, "new-customer": 1}


def test_after_a_failed_reading_back_a_checkpoint_signs_only_committed_entries(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first use after the failed reading back is a commit that writes nothing of the log
    (a forwarder's delete), then the checkpoint loop's signature: it must cover the committed
    tree, not the rolled-back entries, and a handover's look at the tree sees its size."""
    log.write([make_draft(0)], checkpoint=False)
    _rolled_back_and_read_back_failing(
        log, monkeypatch, [make_draft(1), make_draft(2, customer="new-customer")]
    )
    assert log.writer.tree_size(C) == 1
    log.conn.execute("BEGIN IMMEDIATE")
    log.conn.execute("COMMIT")
    log.writer.committed()
    log.conn.execute("BEGIN IMMEDIATE")
    made = log.writer.checkpoint(T0 + timedelta(seconds=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert [(c.customer, c.size) for c in made if c.customer == C] == [(C, 1)]
    assert all(c.customer != "new-customer" for c in made)
    report = verify_db(log.path)
    assert report.ok, report.summary()


def test_reopened_writer_continues_the_chains(log: Log, signer: Signer) -> None:
    log.write([make_draft(i) for i in range(5)])
    log.close()
    again = Log(log.path, signer)
    again.write([make_draft(i) for i in range(5, 9)])
    report = verify_db(log.path)
    assert report.ok and report.chains[0].size == 9
    again.close()


def test_repeated_texts_and_bodies_are_stored_once(log: Log) -> None:
    log.write([make_draft(i % 6) for i in range(300)])
    names = log.conn.execute("SELECT count(*) FROM names").fetchone()[0]
    bodies = log.conn.execute("SELECT count(*) FROM bodies").fetchone()[0]
    # Four distinct bodies (oven-0 shared and withheld, oven-1 and oven-2 shared), each with its
    # names document stored once; the texts are in them (the table of texts is for logs
    # written before names were committed).
    assert names == 4
    assert bodies == 4
    assert log.conn.execute("SELECT count(*) FROM texts").fetchone()[0] == 0


def test_checkpoint_signs_only_chains_that_advanced(log: Log) -> None:
    log.write([make_draft(0), make_draft(1, customer="x")])
    log.conn.execute("BEGIN")
    log.writer.append([make_draft(2)])
    made = log.writer.checkpoint(T0 + timedelta(seconds=5))
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert [(c.customer, c.size) for c in made] == [(C, 2)]
    assert log.writer.checkpoint(T0 + timedelta(seconds=6)) == []


def test_invalid_drafts_are_refused(log: Log) -> None:
    with pytest.raises(EntryInvalid, match="kind"):
        log.writer.append([make_draft(0, kind="nonsense")])
    with pytest.raises(EntryInvalid, match="naive"):
        log.writer.append([make_draft(0, at=T0.replace(tzinfo=None))])
    with pytest.raises(EntryInvalid, match="reserved"):
        log.writer.append([make_draft(0, customer="_gateway")])


def test_draft_from_decision_keeps_everything() -> None:
    decision = Decision(
        customer=C,
        device="oven-1",
        recipient="wartung-gmbh",
        outcome=Outcome.ALTERED,
        grant="g1",
        policy_version="sha256:1",
        purpose={"de": "Wartung"},
        legal_basis=LegalBasis.CONSENT,
        topic="t/1",
        payload=b"{}",
        shared=("a",),
        altered=(Alteration("pos", "coarsen", "1000 m"),),
        withheld=("badge",),
        reason=Reason("x", {"k": "v"}),
    )
    draft = draft_from_decision(
        decision, at=T0, source_digest=hashlib.sha256(b"{}").digest(), text_de="d", text_en="e"
    )
    assert draft.outcome == "altered" and draft.legal_basis == "consent"
    assert draft.altered == (("pos", "coarsen", "1000 m"),)
    assert draft.reason == "x" and draft.reason_params == {"k": "v"}


def test_forgetting_removes_content_and_keeps_proof(log: Log, signer: Signer) -> None:
    secret = b"B-0004"  # the badge id inside make_draft(4)'s payload, device oven-1
    log.write([make_draft(i) for i in range(12)])
    log.writer.scrub()
    assert secret in log.path.read_bytes()
    log.conn.execute("BEGIN")
    erasure = log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(days=1), "Frau Schmidt")
    log.writer.checkpoint(T0 + timedelta(days=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert log.writer.scrub()
    for suffix in ("", "-wal"):
        path = Path(str(log.path) + suffix)
        if path.exists():
            data = path.read_bytes()
            assert secret not in data and b"schmidt/oven-1/telemetry" not in data
    report = verify_db(log.path, public_key=signer.public)
    assert report.ok, report.summary()
    assert report.chains[0].unsigned == 0  # the erasure entry itself is signed
    kind = log.conn.execute(
        "SELECT doc FROM bodies b JOIN entries e ON e.body_id = b.id WHERE e.seq = ?",
        (erasure.seq,),
    ).fetchone()[0]
    assert b'"kind":"erasure"' in kind and b"Frau Schmidt" not in kind
    (named,) = log.conn.execute(
        "SELECT doc FROM names WHERE commitment = ?", (bytes.fromhex(orjson.loads(kind)["names"]),)
    ).fetchone()
    assert b"Frau Schmidt" in named  # the requester is named under the device's new key
    held = log.conn.execute("SELECT count(*) FROM content").fetchone()[0]
    assert held > 0  # other devices keep theirs
    # later entries for the device get a fresh subject key and still verify
    log.write([make_draft(13)])
    assert verify_db(log.path).ok


def test_forgetting_a_customer_erases_all_devices(log: Log) -> None:
    log.write([make_draft(i) for i in range(8)] + [make_draft(1, customer="x")])
    log.conn.execute("BEGIN")
    log.writer.erase_subject(C, T0 + timedelta(days=1), "operator")
    log.conn.execute("COMMIT")
    log.writer.committed()
    remaining = log.conn.execute(
        "SELECT count(*) FROM content c JOIN entries e ON e.seq = c.seq"
        " JOIN chains ch ON ch.id = e.chain_id WHERE ch.name = ?",
        (C,),
    ).fetchone()[0]
    assert remaining == 0
    assert log.conn.execute("SELECT count(*) FROM content").fetchone()[0] == 1
    assert verify_db(log.path).ok


def test_key_rotation_is_signed_by_both_keys(log: Log, signer: Signer, tmp_path: Path) -> None:
    log.write([make_draft(i) for i in range(4)])
    new = Signer.generate(tmp_path / "new.key")
    log.conn.execute("BEGIN")
    rotation = log.writer.rotate_key(new, T0 + timedelta(hours=1))
    log.writer.append([make_draft(5)])
    log.writer.checkpoint(T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert rotation.customer == "_gateway"
    for pinned in (signer.public, new.public):  # either end of the rotation may be pinned
        report = verify_db(log.path, public_key=pinned)
        assert report.ok, report.summary()
        assert len(report.trusted) == 2
        assert verify_bundle(export_customer(log.path, C), pinned).ok
    with pytest.raises(LogError, match="signed by"):
        LogWriter(log.conn, signer, ORIGIN)  # the retired key may not write any more


def test_forged_rotation_record_is_refused(log: Log, signer: Signer) -> None:
    log.write([make_draft(0)])
    log.conn.execute("BEGIN")
    log.writer.rotate_key(Signer.generate(), T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    log.conn.execute("UPDATE keys SET sig_old = zeroblob(64) WHERE prev_key_id IS NOT NULL")
    report = verify_db(log.path, public_key=signer.public)
    assert not report.ok
    assert "signature of the old key" in report.key_problems[0]


def test_compaction_keeps_an_anchor_and_old_exports_still_verify(log: Log, signer: Signer) -> None:
    for b in range(6):
        log.write([make_draft(i) for i in range(b * 100, b * 100 + 100)])
    old_bundle = export_customer(log.path, C)
    cutoff = make_draft(350).at  # checkpoints after batches 0..2 are older: 300 leaves
    log.conn.execute("BEGIN")
    dropped = log.writer.compact(cutoff)
    log.conn.execute("COMMIT")
    log.writer.committed()
    assert dropped == 256  # whole blocks of 256 leaves only
    report = verify_db(log.path, public_key=signer.public)
    assert report.ok, report.summary()
    assert report.chains[0].start == 256 and report.chains[0].size == 600
    log.write([make_draft(i) for i in range(600, 605)])
    assert verify_db(log.path).ok
    new_bundle = export_customer(log.path, C)
    assert verify_bundle(new_bundle, signer.public).ok
    assert verify_bundle(old_bundle, signer.public).ok
    # the dropped block's stored hash is proven by every later checkpoint: forging it breaks
    # verification at the first remaining entry
    conn = sqlite3.connect(log.path)
    conn.execute("UPDATE tree_hashes SET hash = zeroblob(32) WHERE level = 8 AND idx = 0")
    conn.commit()
    conn.close()
    problem = verify_db(log.path).first
    assert problem is not None and problem.index == 256


def test_a_guessed_payload_cannot_be_confirmed_from_the_log_once_forgotten(log: Log) -> None:
    """The log stores a keyed digest of each incoming message, never its plain SHA-256: a short
    payload ("ON", a badge id) could otherwise be confirmed by anyone who guesses it."""
    from gateway.log.chain import source_commitment

    drafts = [make_draft(i) for i in range(6)]
    log.write(drafts)
    stored = {bytes(s) for (s,) in log.conn.execute("SELECT source FROM entries")}
    plain = {d.source_digest for d in drafts}
    assert not stored & plain
    keys = [bytes(k) for (k,) in log.conn.execute("SELECT key FROM subject_keys")]
    # With the keys on the box the gateway (and its auditor) can still match a message...
    assert all(any(source_commitment(k, d.source_digest) in stored for k in keys) for d in drafts)
    log.conn.execute("BEGIN")
    log.writer.erase_subject(C, T0 + timedelta(days=1), "Frau Schmidt")
    log.writer.checkpoint(T0 + timedelta(days=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    # ...and once the customer is forgotten nobody can: the keys are gone (the erasure entry
    # itself gets a fresh one), nothing matches any more, and the chain still verifies.
    left = [bytes(k) for (k,) in log.conn.execute("SELECT key FROM subject_keys")]
    assert not set(left) & set(keys)
    assert not any(source_commitment(k, d.source_digest) in stored for k in left for d in drafts)
    assert verify_db(log.path).ok


def test_a_tree_handed_over_takes_no_more_entries(log: Log) -> None:
    """After a handover the old instance writes nothing more in the customer's tree (the
    verifier would call that tampering): the writer refuses, the other trees go on."""
    log.write([make_draft(i, "werk-a") for i in range(2)])
    log.writer.closed.add("werk-a")
    log.conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(EntryInvalid, match="'werk-a' was handed over to another instance"):
        log.writer.append([make_draft(2, "werk-a")])
    log.conn.execute("ROLLBACK")
    log.writer.rolled_back()
    log.write([make_draft(3, "werk-b")])
    assert log.writer.tree_size("werk-a") == 2 and log.writer.tree_size("werk-b") == 1
