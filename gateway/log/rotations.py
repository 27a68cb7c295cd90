"""The key sequence of one log: rotation records, checked, and the key valid at each size.

A ``key_rotation`` body carries the outgoing and the incoming public key and both keys'
signatures over (origin, index, old, new) (``gateway/log/SPEC.md`` §4). Starting from the key
the log was created under, each valid record in index order must name the current key as
``old`` and makes ``new`` current; a checkpoint of size ``s`` must be signed by the key current
after every rotation record below ``s``, so a retired key signs nothing later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.log.handovers import Handover, origin_at
from gateway.log.keys import PublicKey, fingerprint, key_id_of
from gateway.log.leaf import Record, TreeInput, rotation_message_v2
from gateway.log.verdict import TAMPERED, TreeVerdict

__all__ = ["Rotation", "check_rotations", "key_at"]


@dataclass(slots=True)
class Rotation:
    """A verified rotation record: at tree index ``index``, ``old`` handed over to ``new``."""

    index: int
    old: bytes
    new: bytes


def _params(doc: Mapping[str, object]) -> Mapping[str, object]:
    params = doc.get("reason_params")
    return params if isinstance(params, dict) else {}


def check_rotations(
    data: TreeInput,
    records: Sequence[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: TreeVerdict,
    handovers: Sequence[Handover] = (),
) -> list[Rotation]:
    """The verified rotation records in index order; the first bad one is recorded in
    ``verdict`` and ends the sequence there. A handover (``gateway.log.handovers``, already
    checked on its own) moves the key too: it is one more step of the sequence, from the
    current key to the new instance's, and changes the origin later rotation records sign."""
    found: list[Rotation] = []
    current = data.first_key
    rotation_bodies = {d for d, doc in docs.items() if doc.get("kind") == "key_rotation"}
    if not rotation_bodies and not handovers:
        return found
    moves = {h.index: h for h in handovers}
    for _v, index, _at, body, _src, _flag, _c in records:
        move = moves.get(index)
        if move is not None:
            if move.old != current:
                verdict.fail(
                    TAMPERED,
                    index,
                    "handover from a key that is not the log's current one",
                    fingerprint(key_id_of(current)),
                    fingerprint(key_id_of(move.old)),
                )
                break
            found.append(Rotation(index, move.old, move.new))
            current = move.new
            continue
        if body not in rotation_bodies:
            continue
        params = _params(docs[body])
        try:
            old = bytes.fromhex(str(params["old"]))
            new = bytes.fromhex(str(params["new"]))
            sig_old = bytes.fromhex(str(params["sig_old"]))
            sig_new = bytes.fromhex(str(params["sig_new"]))
        except (KeyError, ValueError):
            verdict.fail(
                TAMPERED,
                index,
                "rotation record incomplete",
                "old, new and both signatures",
                "some missing",
            )
            break
        origin = origin_at(data.origin, handovers, index + 1)  # the origin entry `index` is under
        message = rotation_message_v2(origin, index, old, new)
        if old != current:
            verdict.fail(
                TAMPERED,
                index,
                "rotation from a key that is not the current one",
                fingerprint(key_id_of(current)),
                fingerprint(key_id_of(old)),
            )
            break
        if not PublicKey(old).verify(sig_old, message) or not PublicKey(new).verify(
            sig_new, message
        ):
            verdict.fail(
                TAMPERED,
                index,
                "rotation record not signed by both keys",
                "two valid signatures",
                "an invalid one",
            )
            break
        found.append(Rotation(index, old, new))
        current = new
    return found


def key_at(first: bytes, rotations: Sequence[Rotation], size: int) -> bytes:
    """The key allowed to sign a checkpoint of ``size``: rotations at indexes below it apply."""
    key = first
    for r in rotations:
        if r.index < size:
            key = r.new
    return key
