"""The handover record: its exact bytes, who must sign it, and what a verifier refuses around it.

Whole bundles (good, one signature, wrong root, wrong size, the old instance writing on, an old
origin after the handover) are vectors in tests/log/vectors/ (tests/log/test_vectors.py); here
the record's own rules, on records built in memory.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.handovers import (
    Handover,
    check_handovers,
    handed_over_draft,
    handing_over_draft,
    handover_message,
    origin_at,
)
from gateway.log.jcs import canonical
from gateway.log.keys import Signer
from gateway.log.leaf import Record, TreeInput, rotation_message_v2
from gateway.log.notices import rotation_draft
from gateway.log.rotations import check_rotations, key_at
from gateway.log.verdict import TAMPERED, TreeVerdict

C = "baeckerei-schmidt"
OLD, NEW = f"gw-a/{C}", f"gw-b/{C}"
AT = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)
ROOT = hashlib.sha256(b"twelve leaves").digest()


def _signer(seed: int) -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


OLD_KEY, NEW_KEY = _signer(1), _signer(2)


def test_the_message_is_the_specs_bytes() -> None:
    message = handover_message(OLD, NEW, 12, ROOT, OLD_KEY.public.raw, NEW_KEY.public.raw)
    expected = (
        b"einblick/handover/v1\x00"
        + OLD.encode()
        + b"\x00"
        + NEW.encode()
        + b"\x00"
        + struct.pack(">Q", 12)
        + ROOT
        + OLD_KEY.public.raw
        + NEW_KEY.public.raw
    )
    assert message == expected
    with pytest.raises(ValueError, match="32 bytes"):
        handover_message(OLD, NEW, 12, ROOT[:31], OLD_KEY.public.raw, NEW_KEY.public.raw)


def test_the_new_instance_refuses_a_signature_the_old_key_did_not_make() -> None:
    message = handover_message(OLD, NEW, 12, ROOT, OLD_KEY.public.raw, NEW_KEY.public.raw)
    with pytest.raises(ValueError, match="does not verify"):
        handed_over_draft(
            C,
            AT,
            old_origin=OLD,
            new_origin=NEW,
            size=12,
            root=ROOT,
            old_key=OLD_KEY.public,
            sig_old=NEW_KEY.sign(message),
            new=NEW_KEY,
        )


def _record(size: int = 12) -> dict[str, object]:
    message = handover_message(OLD, NEW, size, ROOT, OLD_KEY.public.raw, NEW_KEY.public.raw)
    draft = handed_over_draft(
        C,
        AT,
        old_origin=OLD,
        new_origin=NEW,
        size=size,
        root=ROOT,
        old_key=OLD_KEY.public,
        sig_old=OLD_KEY.sign(message),
        new=NEW_KEY,
    )
    return {"kind": draft.kind, "reason": draft.reason, "reason_params": draft.reason_params}


def _final(to: str = NEW) -> dict[str, object]:
    draft = handing_over_draft(C, to, NEW_KEY.public, AT)
    return {"kind": draft.kind, "reason": draft.reason, "reason_params": draft.reason_params}


def _check(
    bodies: dict[int, dict[str, object]], *, origin: str = NEW, start: int = 0
) -> tuple[list[Handover], TreeVerdict]:
    """check_handovers over entries ``start..13`` whose bodies are ``bodies`` (by index) or a
    plain decision."""
    docs: dict[bytes, dict[str, object]] = {}
    records: list[Record] = []
    for index in range(start, 14):
        doc = bodies.get(index, {"kind": "decision", "reason": None})
        digest = hashlib.sha256(canonical(doc)).digest()
        docs[digest] = orjson.loads(canonical(doc))
        records.append((2, index, 0, digest, bytes(32), 0, bytes(32)))
    data = TreeInput(origin, C, OLD_KEY.public.raw, b"", (), {}, (), start=start)
    verdict = TreeVerdict(origin, C)
    return check_handovers(data, records, docs, verdict), verdict


def test_a_record_after_the_old_instances_final_entry_is_one_handover() -> None:
    found, verdict = _check({11: _final(), 12: _record()})
    assert verdict.problem is None
    assert [(h.index, h.old_origin, h.new_origin) for h in found] == [(12, OLD, NEW)]
    assert found[0].old == OLD_KEY.public.raw and found[0].new == NEW_KEY.public.raw


def test_a_record_without_the_final_entry_before_it_is_tampered() -> None:
    _, verdict = _check({12: _record()})
    assert verdict.problem is not None
    assert (verdict.problem.code, verdict.problem.index) == (TAMPERED, 12)
    assert "final entry" in verdict.problem.what


def test_a_final_entry_handing_to_another_origin_does_not_fit_the_record() -> None:
    _, verdict = _check({11: _final(f"gw-c/{C}"), 12: _record()})
    assert verdict.problem is not None and verdict.problem.index == 12


def test_a_compacted_final_entry_is_not_asked_for() -> None:
    found, verdict = _check({12: _record()}, start=12)
    assert verdict.problem is None and len(found) == 1


def test_the_bundles_origin_must_be_where_the_last_handover_moved_the_log() -> None:
    _, verdict = _check({11: _final(), 12: _record()}, origin=f"gw-c/{C}")
    assert verdict.problem is not None and verdict.problem.index == 12
    assert "origin" in verdict.problem.what


def test_a_record_missing_a_signature_is_incomplete() -> None:
    record = _record()
    params = dict(record["reason_params"])  # type: ignore[call-overload]
    del params["sig_new"]
    _, verdict = _check({11: _final(), 12: {**record, "reason_params": params}})
    assert verdict.problem is not None and verdict.problem.what == "handover record incomplete"


@pytest.mark.parametrize(
    ("size", "origin"),
    [(1, OLD), (12, OLD), (13, NEW), (500, NEW)],
)
def test_checkpoints_up_to_the_record_are_the_old_origins(size: int, origin: str) -> None:
    handover = Handover(12, 12, OLD, NEW, ROOT, OLD_KEY.public.raw, NEW_KEY.public.raw)
    assert origin_at(NEW, [handover], size) == origin
    assert origin_at(NEW, [], size) == NEW


def test_a_record_at_another_size_than_its_index_is_tampered() -> None:
    _, verdict = _check({11: _final(), 12: _record(size=11)})
    assert verdict.problem is not None and verdict.problem.index == 12
    assert "wrong size" in verdict.problem.what


def test_after_a_handover_rotations_start_from_the_new_key_and_sign_the_new_origin() -> None:
    third = _signer(3)
    message = rotation_message_v2(NEW, 13, NEW_KEY.public.raw, third.public.raw)
    rotation = rotation_draft(C, AT, NEW_KEY, third, message)
    rotation_doc = {"kind": rotation.kind, "reason_params": rotation.reason_params}
    bodies = {11: _final(), 12: _record(), 13: rotation_doc}
    handovers, verdict = _check(bodies)
    docs: dict[bytes, dict[str, object]] = {}
    records: list[Record] = []
    for index in range(14):
        doc = bodies.get(index, {"kind": "decision", "reason": None})
        digest = hashlib.sha256(canonical(doc)).digest()
        docs[digest] = orjson.loads(canonical(doc))
        records.append((2, index, 0, digest, bytes(32), 0, bytes(32)))
    data = TreeInput(NEW, C, OLD_KEY.public.raw, b"", (), {}, (), start=0)
    steps = check_rotations(data, records, docs, verdict, handovers)
    assert verdict.problem is None
    assert [(r.index, r.new) for r in steps] == [(12, NEW_KEY.public.raw), (13, third.public.raw)]
    assert key_at(OLD_KEY.public.raw, steps, 13) == NEW_KEY.public.raw
    assert key_at(OLD_KEY.public.raw, steps, 14) == third.public.raw
