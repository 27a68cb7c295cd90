"""Go's golang.org/x/mod/sumdb/{note,tlog} agree with Einblick's trees, proofs and checkpoints."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.bundle import export_customer
from gateway.log.keys import Signer as KeySigner
from gateway.log.keys import load_public_key
from gateway.log.merkle import (
    RightEdge,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of_leaf_hashes,
)
from gateway.log.note import ED25519_TYPE, Checkpoint, Signer, TlogProof, Verifier, sign_note
from gateway.log.prove import prove_entry_file
from tests.log.conftest import ORIGIN, Log, make_draft
from tests.log.interop import go

C = "baeckerei-schmidt"


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


def test_go_checks_a_real_exported_bundle_and_a_prove_output(
    tlogcheck: Path, tmp_path: Path
) -> None:
    """An exported bundle's every checkpoint verifies with Go's sumdb/note under the customer's
    vkey, Go's sumdb/tlog recomputes each root from the bundle's entry bytes, and an
    ``einblick prove`` file's inclusion proof holds in Go."""
    signer = KeySigner.generate(tmp_path / "log.key")
    log = Log(tmp_path / "log.db", signer)
    for batch in range(4):
        log.write([make_draft(i, customer=C) for i in range(batch * 70, batch * 70 + 70)])
    bundle = export_customer(log.path, C)
    log.close()
    rows = [orjson.loads(line) for line in bundle.splitlines()]
    entries = []
    for chunk in (base64.b64decode(r["data"]) for r in rows if r["t"] == "entries"):
        k = len(chunk) // 146  # SPEC.md §6: k entries of 114 bytes, then their k leaves
        entries += [chunk[i : i + 114] for i in range(0, k * 114, 114)]
    notes = [str(r["note"]) for r in rows if r["t"] == "checkpoint"]
    assert len(entries) == 280 and len(notes) == 4
    vkey = signer.note_signer(f"{ORIGIN}/{C}").verifier.vkey
    proof = TlogProof.parse(prove_entry_file(log.path, C, 200).text)
    assert proof.extra is not None
    verdict = go.check(
        tlogcheck,
        vkey=vkey,
        note=notes,
        leaves=entries,
        records=[(proof.index, proof.extra[:114], proof.proof)],
    )
    assert verdict.ok, verdict.error
    assert verdict.size == 280 and verdict.records == (200,)
    # the same bundle with one entry byte changed: Go refuses the root
    broken = [*entries[:5], entries[5][:20] + b"\xff" + entries[5][21:], *entries[6:]]
    verdict = go.check(tlogcheck, vkey=vkey, note=notes, leaves=broken)
    assert not verdict.ok and "differs from the checkpoint" in verdict.error
    # another customer's vkey (same box key, another origin) does not open the notes
    other = signer.note_signer(f"{ORIGIN}/metallbau-huber").verifier.vkey
    verdict = go.check(tlogcheck, vkey=other, note=notes, leaves=entries)
    assert not verdict.ok and "signature" in verdict.error


def test_go_recomputes_a_handed_over_bundle_as_one_tree_under_both_origins(
    tlogcheck: Path,
) -> None:
    """The handover vector (one tree, written by instance gw-test then gw-hall-b): Go's
    sumdb/note opens the checkpoints up to the handover with the old instance's vkey and those
    after it with the new one's, and sumdb/tlog recomputes every root from the same entries."""
    vectors = Path(__file__).with_name("vectors")
    rows = [
        orjson.loads(line) for line in (vectors / "good-handover.bundle").read_bytes().splitlines()
    ]
    blob = b"".join(base64.b64decode(r["data"]) for r in rows if r["t"] == "entries")
    entries = [blob[i : i + 114] for i in range(0, len(blob), 146)]
    notes = [str(r["note"]) for r in rows if r["t"] == "checkpoint"]
    old_origin, new_origin = f"{ORIGIN}/{C}", f"gw-hall-b/{C}"
    before = [n for n in notes if n.startswith(old_origin + "\n")]
    after = [n for n in notes if n.startswith(new_origin + "\n")]
    assert before and after and len(before) + len(after) == len(notes)
    old_vkey = Verifier(old_origin, ED25519_TYPE, load_public_key(vectors / "old.pub").raw).vkey
    new_vkey = Verifier(
        new_origin, ED25519_TYPE, load_public_key(vectors / "handover.pub").raw
    ).vkey
    n = Checkpoint.parse(before[-1].split("\n\n")[0] + "\n").size  # the handover's size
    verdict = go.check(tlogcheck, vkey=old_vkey, note=before, leaves=entries[:n])
    assert verdict.ok, verdict.error
    old_root = verdict.root
    # one consistency chain across: Go checks our proof from the old instance's final
    # checkpoint to the new instance's latest and derives the same one
    leaves = [leaf_hash(e) for e in entries]
    across = consistency_proof(n, len(leaves), lambda lo, hi: root_of_leaf_hashes(leaves[lo:hi]))
    verdict = go.check(
        tlogcheck, vkey=new_vkey, note=after, leaves=entries, consistency=[(n, old_root, across)]
    )
    assert verdict.ok, verdict.error
    assert verdict.size == len(entries) == 19 and n == 12
    assert verdict.consistency == {n: across}
    # the new instance's key cannot stand in for the old one's before the handover
    verdict = go.check(tlogcheck, vkey=new_vkey, note=before, leaves=entries[:n])
    assert not verdict.ok and "signature" in verdict.error
