"""A customer's log moving between instances: the handover record, its entries, its check.

A cluster's instances each own some customers (``gateway/operations/cluster.py``); moving a
customer moves its tree, which stays ONE tree (``gateway/log/SPEC.md`` §4, "Handover"):

- the old instance writes a final entry (``gateway_event``, reason ``handing_over``, naming the
  new origin and the new key), signs a checkpoint of size ``n`` under its origin and key, signs
  the handover record below and writes nothing more into that tree;
- the new instance continues the same tree under its own origin ``<new instance>/<customer>``
  and key; its first entry, at index ``n`` (``gateway_event``, reason ``handed_over``), carries
  the record and both signatures::

    "einblick/handover/v1" || 0x00 || old origin || 0x00 || new origin || 0x00
        || u64 size || root (32) || old key (32) || new key (32)

  where ``size``/``root`` are the old instance's final checkpoint (``size`` = ``n``).

A verifier walks the tree once: checkpoints of size ``<= n`` are the old origin's, signed by the
old key; those above ``n`` the new origin's, signed by the new key; one consistency chain runs
across. The bundle header's ``origin`` is the log's origin now (after its last handover); the
records say the earlier ones. This module is pure (no files, no SQL); ``gateway.log.proof``
calls :func:`check_handovers` and :func:`check_roots`, ``gateway.log.rotations`` threads the
keys and origins through the key sequence.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from gateway.log.entry import EntryDraft
from gateway.log.keys import PublicKey, Signer, fingerprint, key_id_of
from gateway.log.leaf import Record, TreeInput
from gateway.log.levels import Levels, prefix_root
from gateway.log.merkle import EMPTY_ROOT
from gateway.log.verdict import TAMPERED, TreeVerdict

__all__ = [
    "HANDED_OVER",
    "HANDING_OVER",
    "Handover",
    "check_handovers",
    "check_roots",
    "claimed_origin_at",
    "handed_over_draft",
    "handing_over_draft",
    "handover_message",
    "origin_at",
]

HANDING_OVER = "handing_over"  # the old instance's final entry in the tree
HANDED_OVER = "handed_over"  # the new instance's first entry: the handover record
_DOMAIN = b"einblick/handover/v1\x00"
_U64 = struct.Struct(">Q")


def handover_message(  # noqa: PLR0917 -- the record's six fields, in its byte order
    old_origin: str, new_origin: str, size: int, root: bytes, old: bytes, new: bytes
) -> bytes:
    """The bytes both keys sign (SPEC.md §2, "handover record")."""
    if len(root) != 32 or len(old) != 32 or len(new) != 32:
        raise ValueError("handover record: root and keys are 32 bytes each")
    return (
        _DOMAIN
        + old_origin.encode("utf-8")
        + b"\x00"
        + new_origin.encode("utf-8")
        + b"\x00"
        + _U64.pack(size)
        + root
        + old
        + new
    )


@dataclass(frozen=True, slots=True)
class Handover:
    """A verified handover record at tree index ``index`` (= ``size``)."""

    index: int
    size: int
    old_origin: str
    new_origin: str
    root: bytes
    old: bytes
    new: bytes


def handing_over_draft(
    customer: str, to_origin: str, new_key: PublicKey, at: datetime
) -> EntryDraft:
    """The old instance's last entry in ``customer``'s tree: where the log goes, under which key."""
    return EntryDraft.record(
        "gateway_event",
        at,
        customer=customer,
        reason=HANDING_OVER,
        reason_params={"to": to_origin, "new": new_key.raw.hex()},
        text_de=(
            f"Das Protokoll wird an {to_origin} übergeben (Schlüssel {new_key.fingerprint}); "
            "diese Instanz schreibt hier nichts mehr."
        ),
        text_en=(
            f"The log is handed over to {to_origin} (key {new_key.fingerprint}); this instance "
            "writes nothing more here."
        ),
    )


def handed_over_draft(
    customer: str,
    at: datetime,
    *,
    old_origin: str,
    new_origin: str,
    size: int,
    root: bytes,
    old_key: PublicKey,
    sig_old: bytes,
    new: Signer,
) -> EntryDraft:
    """The new instance's first entry (index ``size``): the record, signed by both keys.
    ``sig_old`` comes from the old instance; it is checked here so a wrong one is never logged."""
    message = handover_message(old_origin, new_origin, size, root, old_key.raw, new.public.raw)
    if not old_key.verify(sig_old, message):
        raise ValueError(
            f"handover of {customer!r}: the old instance's signature does not verify under "
            f"{old_key.fingerprint} for size {size} and root {root.hex()[:16]}…"
        )
    return EntryDraft.record(
        "gateway_event",
        at,
        customer=customer,
        reason=HANDED_OVER,
        reason_params={
            "from": old_origin,
            "to": new_origin,
            "size": str(size),
            "root": root.hex(),
            "old": old_key.raw.hex(),
            "new": new.public.raw.hex(),
            "sig_old": sig_old.hex(),
            "sig_new": new.sign(message).hex(),
        },
        text_de=(
            f"Das Protokoll wurde von {old_origin} übernommen; es setzt dessen letzten "
            f"Prüfpunkt ({size} Einträge) fort."
        ),
        text_en=(
            f"The log was taken over from {old_origin}; it continues that instance's last "
            f"checkpoint ({size} entries)."
        ),
    )


def origin_at(final: str, handovers: Sequence[Handover], size: int) -> str:
    """The origin whose checkpoint of ``size`` is valid: before a handover's record is
    covered (``size <= index``) the old one, after it the new one, ``final`` after the last."""
    for h in handovers:
        if size <= h.index:
            return h.old_origin
    return final


def _params(doc: Mapping[str, object]) -> Mapping[str, object]:
    params = doc.get("reason_params")
    return params if isinstance(params, dict) else {}


def _what(doc: Mapping[str, object] | None) -> str:
    if doc is None:
        return "an entry whose body is missing"
    return f"a {doc.get('kind')} entry" + (f" ({doc['reason']})" if doc.get("reason") else "")


def _handover_bodies(docs: Mapping[bytes, dict[str, object]], reason: str) -> set[bytes]:
    return {
        d
        for d, doc in docs.items()
        if doc.get("kind") == "gateway_event" and doc.get("reason") == reason
    }


def check_handovers(
    data: TreeInput,
    records: Sequence[Record],
    docs: Mapping[bytes, dict[str, object]],
    verdict: TreeVerdict,
) -> list[Handover]:
    """The handover records in index order, each checked on its own and against its
    neighbours: signed by both keys over its fields, at index = size, after the old instance's
    ``handing_over`` entry (unless compacted away) naming the same origin and key, and nothing
    but the record after a ``handing_over`` entry (the old instance wrote on). The chain of
    origins must end at the bundle's origin. The first problem is recorded and ends the list.
    The keys are threaded by ``gateway.log.rotations``, the roots checked by :func:`check_roots`."""
    found: list[Handover] = []
    outgoing = _handover_bodies(docs, HANDING_OVER)
    incoming = _handover_bodies(docs, HANDED_OVER)
    if not outgoing and not incoming:
        return found
    by_index = {r[1]: r for r in records}
    for _v, index, _at, body, _src, _flag, _c in records:
        if body in outgoing:
            following = by_index.get(index + 1)
            if following is not None and following[3] not in incoming:
                verdict.fail(
                    TAMPERED,
                    index + 1,
                    "entry written by the old instance after it handed the log over",
                    "the new instance's handover record",
                    _what(docs.get(following[3])),
                )
                break
            continue
        if body not in incoming:
            continue
        handover = _one(data, index, _params(docs[body]), found, verdict)
        if handover is None:
            break
        before = by_index.get(index - 1)
        if index - 1 >= data.start and (
            before is None
            or before[3] not in outgoing
            or _params(docs[before[3]]).get("to") != handover.new_origin
            or _params(docs[before[3]]).get("new") != handover.new.hex()
        ):
            verdict.fail(
                TAMPERED,
                index,
                "handover record without the old instance's final entry handing the log to it",
                f"entry {index - 1} handing over to {handover.new_origin}",
                "another entry",
            )
            break
        found.append(handover)
    else:
        final = found[-1].new_origin if found else None
        if final is not None and final != data.origin:
            verdict.fail(
                TAMPERED,
                found[-1].index,
                "the log's origin is not the one its last handover moved it to",
                final,
                data.origin,
            )
    return found


def _one(
    data: TreeInput,
    index: int,
    params: Mapping[str, object],
    earlier: Sequence[Handover],
    verdict: TreeVerdict,
) -> Handover | None:
    try:
        record = Handover(
            index=index,
            size=int(str(params["size"])),
            old_origin=str(params["from"]),
            new_origin=str(params["to"]),
            root=bytes.fromhex(str(params["root"])),
            old=bytes.fromhex(str(params["old"])),
            new=bytes.fromhex(str(params["new"])),
        )
        sig_old = bytes.fromhex(str(params["sig_old"]))
        sig_new = bytes.fromhex(str(params["sig_new"]))
        message = handover_message(
            record.old_origin, record.new_origin, record.size, record.root, record.old, record.new
        )
    except (KeyError, ValueError):
        verdict.fail(
            TAMPERED,
            index,
            "handover record incomplete",
            "from, to, size, root, both keys and both signatures",
            "some missing or malformed",
        )
        return None
    if record.size != index:
        verdict.fail(
            TAMPERED,
            index,
            "handover record at the wrong size (it must continue the old instance's last checkpoint)",
            f"size {index}",
            f"size {record.size}",
        )
        return None
    expected_from = earlier[-1].new_origin if earlier else None
    if expected_from is not None and record.old_origin != expected_from:
        verdict.fail(
            TAMPERED,
            index,
            "handover from an origin the log was not at",
            expected_from,
            record.old_origin,
        )
        return None
    if record.old_origin == record.new_origin:
        verdict.fail(
            TAMPERED, index, "handover to the same origin", "another origin", record.new_origin
        )
        return None
    if not PublicKey(record.old).verify(sig_old, message) or not PublicKey(record.new).verify(
        sig_new, message
    ):
        verdict.fail(
            TAMPERED,
            index,
            "handover record not signed by both instances' keys",
            f"signatures by {fingerprint(key_id_of(record.old))} and {fingerprint(key_id_of(record.new))}",
            "an invalid one",
        )
        return None
    return record


def check_roots(
    handovers: Sequence[Handover], levels: Levels, size: int, verdict: TreeVerdict
) -> None:
    """Each record's root must be the root of the first ``size`` leaves: the new instance
    continues exactly the tree the old one signed."""
    for h in handovers:
        if h.size > size:
            return  # entries before it are already reported bad
        root = prefix_root(levels, h.size) if h.size else EMPTY_ROOT
        if root != h.root:
            verdict.fail(
                TAMPERED,
                h.index,
                f"handover record's root is not the root of the first {h.size} entries",
                h.root.hex()[:16] + "…",
                root.hex()[:16] + "…",
            )
            return


def claimed_origin_at(tree: TreeInput, size: int) -> str:
    """The origin a checkpoint of ``size`` of this tree should carry, as its handover records
    claim (unverified: for reading a kept checkpoint before the tree is checked, which then
    fails on any false claim)."""
    claims: list[tuple[int, str]] = []  # (index of the record, the origin before it)
    for raw in tree.bodies.values():
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or doc.get("reason") != HANDED_OVER:
                continue
            params = _params(doc)
            claims.append((int(str(params["size"])), str(params["from"])))
        except (orjson.JSONDecodeError, KeyError, ValueError):
            continue
    for index, before in sorted(claims):
        if size <= index:
            return before
    return tree.origin
