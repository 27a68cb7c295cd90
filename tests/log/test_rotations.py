"""The key sequence: a rotation record signed by both keys continues it; one signed by a key
that is not current, or missing a signature, is tampering at its index; a checkpoint's key is the
one current after every rotation below its size."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import orjson

from gateway.log.bundle import export_customer
from gateway.log.bundle_lines import parse_bundle
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_LAYOUT, Record, TreeInput
from gateway.log.rotations import Rotation, check_rotations, key_at
from gateway.log.verdict import TAMPERED, TreeVerdict
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


def rotated(log: Log) -> tuple[TreeInput, list[Record], dict[bytes, dict[str, object]], Signer]:
    log.write([make_draft(i, customer=C) for i in range(5)])
    new = Signer.generate()
    at = make_draft(10).at + timedelta(seconds=1)
    log.conn.execute("BEGIN IMMEDIATE")
    log.writer.rotate_key(new, at)
    log.writer.checkpoint(at)
    log.conn.execute("COMMIT")
    log.writer.committed()
    tree = parse_bundle(export_customer(log.path, C)).tree
    records = list(ENTRY_LAYOUT.iter_unpack(tree.entries))
    docs = {d: orjson.loads(b) for d, b in tree.bodies.items()}
    return tree, records, docs, new


def test_a_rotation_signed_by_both_keys_continues_the_sequence(log: Log, signer: Signer) -> None:
    tree, records, docs, new = rotated(log)
    verdict = TreeVerdict(tree.origin, tree.customer)
    found = check_rotations(tree, records, docs, verdict)
    assert verdict.ok
    assert found == [Rotation(5, signer.public.raw, new.public.raw)]
    assert key_at(signer.public.raw, found, 5) == signer.public.raw  # a checkpoint before it
    assert key_at(signer.public.raw, found, 6) == new.public.raw  # one covering it


def _with_params(
    docs: dict[bytes, dict[str, object]], **changes: str
) -> dict[bytes, dict[str, object]]:
    changed = {}
    for digest, doc in docs.items():
        if doc.get("kind") == "key_rotation":
            params = dict(doc["reason_params"])  # type: ignore[call-overload]
            params.update(changes)
            changed[digest] = {**doc, "reason_params": params}
        else:
            changed[digest] = doc
    return changed


def test_a_forged_signature_is_tampering_at_the_record(log: Log) -> None:
    tree, records, docs, _new = rotated(log)
    forged = _with_params(docs, sig_new=bytes(64).hex())
    verdict = TreeVerdict(tree.origin, tree.customer)
    assert check_rotations(tree, records, forged, verdict) == []
    assert verdict.problem is not None and verdict.problem.code == TAMPERED
    assert verdict.problem.index == 5 and "signed by both keys" in verdict.problem.what


def test_a_rotation_from_a_key_that_is_not_current_is_refused(log: Log) -> None:
    tree, records, docs, _new = rotated(log)
    other = replace(tree, first_key=Signer.generate().public.raw)
    verdict = TreeVerdict(tree.origin, tree.customer)
    assert check_rotations(other, records, docs, verdict) == []
    assert verdict.problem is not None and verdict.problem.index == 5
    assert "not the current one" in verdict.problem.what


def test_a_record_without_its_signatures_is_incomplete(log: Log) -> None:
    tree, records, docs, _new = rotated(log)
    verdict = TreeVerdict(tree.origin, tree.customer)
    check_rotations(tree, records, _with_params(docs, sig_old="zz"), verdict)
    assert verdict.problem is not None and verdict.problem.what == "rotation record incomplete"
