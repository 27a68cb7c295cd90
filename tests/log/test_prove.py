"""Single-entry proofs (c2sp.org/tlog-proof@v1): made from the database, checked with the key
alone; a changed entry, body or checkpoint, or another key, fails; garbage is unusable."""

from __future__ import annotations

import pytest

from gateway.errors import LogError
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_SIZE
from gateway.log.note import TlogProof
from gateway.log.prove import check_entry_proof, prove_entry_file
from gateway.log.verdict import OK, TAMPERED, UNUSABLE
from tests.log.conftest import Log, make_draft

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
