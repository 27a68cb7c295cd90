"""Single-entry proofs (c2sp.org/tlog-proof@v1): made from the database, checked with the key
alone; a changed entry, body or checkpoint, or another key, fails; garbage is unusable."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.commands.log import verify_command
from gateway.errors import LogError
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_SIZE
from gateway.log.names import names_commitment
from gateway.log.note import TlogProof
from gateway.log.prove import check_entry_proof, prove_entry_file
from gateway.log.verdict import OK, TAMPERED, UNUSABLE
from tests.log.conftest import T0, Log, make_draft

C = "baeckerei-schmidt"


@pytest.fixture
def proof(log: Log) -> TlogProof:
    log.write([make_draft(i, customer=C) for i in range(9)])
    return prove_entry_file(log.path, C, 5)


def test_a_proof_checks_with_the_key_alone(proof: TlogProof, signer: Signer) -> None:
    verdict = check_entry_proof(proof.text, signer.public)
    assert verdict.code == OK and verdict.size == 9 and verdict.problem is None
    assert b'"kind":"decision"' in verdict.body


def test_a_changed_entry_or_body_fails(proof: TlogProof, signer: Signer) -> None:
    extra = proof.extra or b""
    flipped = bytearray(extra)
    flipped[12] ^= 1  # the entry's time
    changed = TlogProof(proof.index, proof.proof, proof.checkpoint_note, bytes(flipped))
    verdict = check_entry_proof(changed.text, signer.public)
    assert verdict.code == TAMPERED and verdict.problem is not None
    assert verdict.problem.what == "not included in the signed tree"
    body = extra[:ENTRY_SIZE] + extra[ENTRY_SIZE:].replace(b"Wartung", b"Werbung", 1)
    changed = TlogProof(proof.index, proof.proof, proof.checkpoint_note, body)
    verdict = check_entry_proof(changed.text, signer.public)
    assert verdict.problem is not None and "body does not match" in verdict.problem.what


def test_another_key_or_garbage(proof: TlogProof) -> None:
    verdict = check_entry_proof(proof.text, Signer.generate().public)
    assert verdict.code == TAMPERED and verdict.problem is not None
    assert "not signed by the key you trust" in verdict.problem.what
    assert check_entry_proof("not a proof\n", Signer.generate().public).code == UNUSABLE


def test_an_entry_outside_the_signed_tree_is_an_error(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(3)])
    with pytest.raises(LogError, match="not in the signed tree of 3"):
        prove_entry_file(log.path, C, 3)
    with pytest.raises(LogError, match="no signed log"):
        prove_entry_file(log.path, "nobody", 0)


def test_the_names_document_travels_and_is_checked(proof: TlogProof, signer: Signer) -> None:
    extra = proof.extra or b""
    body, mark, names = extra[ENTRY_SIZE:].partition(b"\x00")
    assert mark and len(names) > 32
    verdict = check_entry_proof(proof.text, signer.public)
    assert verdict.code == OK and verdict.names == names[32:]
    assert json.loads(verdict.names)["text_en"].startswith("oven-2: temperature shared")
    assert json.loads(body)["names"] == names_commitment(names[:32], names[32:]).hex()
    forged = extra.replace(b"temperature shared", b"nothing is shared", 1)
    changed = TlogProof(proof.index, proof.proof, proof.checkpoint_note, forged)
    verdict = check_entry_proof(changed.text, signer.public)
    assert verdict.code == TAMPERED and verdict.problem is not None
    assert verdict.problem.what == "names document does not match its commitment"
    cut = TlogProof(proof.index, proof.proof, proof.checkpoint_note, extra[: -len(names) + 5])
    verdict = check_entry_proof(cut.text, signer.public)
    assert verdict.problem is not None and verdict.problem.what == "names salt cut off"


def test_after_forgetting_the_proof_carries_the_body_alone(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C) for i in range(9)])
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-2", T0 + timedelta(hours=1), "customer")
    log.writer.checkpoint(T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    forgotten = prove_entry_file(log.path, C, 5)
    assert b"\x00" not in (forgotten.extra or b"")[ENTRY_SIZE:]
    verdict = check_entry_proof(forgotten.text, signer.public)
    assert verdict.code == OK and verdict.names == b""
    kept = check_entry_proof(prove_entry_file(log.path, C, 4).text, signer.public)
    assert kept.code == OK and b"oven-1" in kept.names  # another device's is still held


def test_the_cli_prints_the_checked_document(
    proof: TlogProof, signer: Signer, tmp_path: Path
) -> None:
    (tmp_path / "entry.proof").write_text(proof.text)
    (tmp_path / "box.pub").write_text(signer.public.pem())
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(
        bundle=tmp_path / "entry.proof",
        db=None,
        customer=None,
        key=tmp_path / "box.pub",
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    assert "oven-2: temperature shared with Wartung GmbH" in out.getvalue()


def test_every_refusal_hands_on_no_body_and_says_which_checkpoint(
    proof: TlogProof, signer: Signer
) -> None:
    """Each way a proof fails gives its code, the checkpoint's origin and size where it was
    read, and never the body: a caller cannot show an unproven explanation as proven."""
    extra = proof.extra or b""
    note = proof.checkpoint_note
    origin = note.split("\n", 1)[0]
    other_index = bytearray(extra)
    other_index[8] ^= 1  # the entry's own index field (its last byte)
    cases = [
        ("garbage\n", signer.public, UNUSABLE, ("", 0), "not a proof"),
        (proof.text, Signer.generate().public, TAMPERED, (origin, 9), "not signed by the key"),
        (
            TlogProof(proof.index, proof.proof, note, extra[:10]).text,
            signer.public,
            UNUSABLE,
            (origin, 9),
            "no entry bytes",
        ),
        (
            TlogProof(proof.index, proof.proof, note, bytes(other_index)).text,
            signer.public,
            TAMPERED,
            (origin, 9),
            "not included in the signed tree",
        ),
        (
            TlogProof(proof.index, proof.proof, note, extra.replace(b"Wartung", b"Werbung")).text,
            signer.public,
            TAMPERED,
            (origin, 9),
            "the body does not match",
        ),
    ]
    for text, key, code, (want_origin, want_size), what in cases:
        verdict = check_entry_proof(text, key)
        assert verdict.problem is not None and what in verdict.problem.what
        assert (verdict.code, verdict.problem.code) == (code, code)
        assert (verdict.origin, verdict.size, verdict.body) == (want_origin, want_size, b"")
