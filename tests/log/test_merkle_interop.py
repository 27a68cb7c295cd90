"""Go's golang.org/x/mod/sumdb/{note,tlog} agree with Einblick's trees, proofs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import (
    RightEdge,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of_leaf_hashes,
)
from gateway.log.note import Checkpoint, Signer, sign_note
from tests.log.interop import go


@pytest.fixture(scope="module")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go.build(tmp_path_factory.mktemp("go"))


def test_go_recomputes_the_root_checks_our_proofs_and_proves_the_same(tlogcheck: Path) -> None:
    records = [b"entry %d" % i for i in range(1, 38)]
    leaves = [leaf_hash(r) for r in records]
    size = len(records)
    edge = RightEdge()
    stored: dict[tuple[int, int], bytes] = {}
    for h in leaves:
        for level, index, node in edge.append(h):
            stored[level, index] = node

    def subtree(lo: int, hi: int) -> bytes:
        return root_of_leaf_hashes(leaves[lo:hi])

    log = Signer("box.example/einblick/acme", Ed25519PrivateKey.generate())
    note = sign_note(Checkpoint(log.name, size, edge.root()).text, [log])
    inclusion = [(i, inclusion_proof(i, size, subtree)) for i in (0, 1, 16, 31, 32, 36)]
    consistency = [
        (old, root_of_leaf_hashes(leaves[:old]), consistency_proof(old, size, subtree))
        for old in (1, 7, 8, 16, 33, 36)
    ]
    verdict = go.check(
        tlogcheck,
        vkey=log.verifier.vkey,
        note=note,
        leaves=records,
        inclusion=inclusion,
        consistency=consistency,
    )
    assert verdict.ok, verdict.error
    assert (verdict.size, verdict.root) == (size, edge.root())
    assert verdict.inclusion == {i: p for i, p in inclusion}
    assert verdict.consistency == {old: p for old, _, p in consistency}


def test_go_refuses_a_rewritten_entry_and_a_foreign_signature(tlogcheck: Path) -> None:
    records = [b"entry %d" % i for i in range(5)]
    root = root_of_leaf_hashes([leaf_hash(r) for r in records])
    log = Signer("box.example/einblick/acme", Ed25519PrivateKey.generate())
    note = sign_note(Checkpoint(log.name, 5, root).text, [log])
    tampered = [*records[:2], b"entry X", *records[3:]]
    verdict = go.check(tlogcheck, vkey=log.verifier.vkey, note=note, leaves=tampered)
    assert not verdict.ok and "differs from the checkpoint" in verdict.error
    stranger = Signer(log.name, Ed25519PrivateKey.generate())
    verdict = go.check(tlogcheck, vkey=stranger.verifier.vkey, note=note, leaves=records)
    assert not verdict.ok and "signature" in verdict.error
