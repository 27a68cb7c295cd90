"""One log entry: the draft the pipeline hands in, and what the log hands back.

The pipeline builds an ``EntryDraft`` from a ``policies.decision.Decision`` (``draft_from_decision``)
and appends it inside its own transaction. A draft splits three ways: the repeated *body* (stored
once, hashed into the log, kept for ever: ``body_of``), its *names document* (everything a device
or a person chose, committed per subject and erasable: ``names_of``, ``gateway.log.names``), and
the per-entry parts (time, source, content).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.errors import EntryInvalid
from gateway.log.chain import GATEWAY_CHAIN
from gateway.log.documents import BodyV2, NamesDocument
from policies.decision import Decision

__all__ = [
    "KINDS",
    "NAMED_PARAMS",
    "OUTCOMES",
    "AppendedEntry",
    "Checkpoint",
    "EntryDraft",
    "at_from_us",
    "body_of",
    "draft_from_decision",
    "names_of",
    "us_from_at",
]

KINDS = frozenset(
    {
        "decision",
        "consent_given",
        "consent_withdrawn",
        "objection",
        "objection_lifted",
        "restriction",
        "restriction_lifted",
        "erasure",
        "key_rotation",
        "policy_loaded",
        "gateway_event",
        "retention",
    }
)
OUTCOMES: dict[str | None, int] = {None: 0, "shared": 1, "altered": 2, "withheld": 3}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def us_from_at(at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise EntryInvalid("at", f"expected an aware UTC datetime, found naive {at.isoformat()}")
    return (at - _EPOCH) // _US


def at_from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


# Not frozen: one is built per decision on the hot path, and a frozen __init__ (object.__setattr__
# per field) cost 7x a plain one for these 23 fields (11 µs against 1.5 µs here). Nobody changes
# a draft after it is built; it was never hashable (its purpose and reason parameters are dicts).
@dataclass(slots=True)
class EntryDraft:
    """One entry to append. ``topic`` and ``content`` are personal and erasable."""

    kind: str
    at: datetime
    customer: str | None
    device: str | None
    recipient: str | None
    outcome: str | None
    grant: str | None
    policy_version: str | None
    purpose: Mapping[str, str]
    legal_basis: str | None
    topic: str | None
    content: bytes | None
    source_digest: bytes
    shared: tuple[str, ...]
    altered: tuple[tuple[str, str, str], ...]
    withheld: tuple[str, ...]
    reason: str | None
    reason_params: Mapping[str, str]
    text_de: str
    text_en: str
    subject: str | None = None
    # Paths the caps left out of shared/altered/withheld (``Decision.omitted``); in the body only
    # when some were, so bodies written before the caps keep their digests.
    omitted: Mapping[str, int] = field(default_factory=dict)
    # The decision's key, when the pipeline has one (gateway/messages/drafting.py): equal for
    # drafts with equal bodies, so the writer looks the body up under it instead of keying the
    # draft again (``body_key``). Never written: the entry's bytes do not depend on it.
    shape: tuple[object, ...] | None = field(default=None, compare=False, repr=False)
    # A decision taken again at send time: the seq of the entry it replaces, which the writer
    # names in the body by its tree index (``supersedes``), so what left is counted once.
    supersedes: int | None = None

    @classmethod
    def record(
        cls,
        kind: str,
        at: datetime,
        *,
        customer: str | None,
        text_de: str,
        text_en: str,
        device: str | None = None,
        recipient: str | None = None,
        grant: str | None = None,
        policy_version: str | None = None,
        purpose: Mapping[str, str] | None = None,
        legal_basis: str | None = None,
        reason: str | None = None,
        reason_params: Mapping[str, str] | None = None,
        source_digest: bytes = bytes(32),
        subject: str | None = None,
    ) -> EntryDraft:
        """An entry the gateway writes about itself or a customer's right (a seal, a rotation, an
        erasure, a retention run, a consent): no message, no fields, no outcome."""
        return cls(
            kind=kind,
            at=at,
            customer=customer,
            device=device,
            recipient=recipient,
            outcome=None,
            grant=grant,
            policy_version=policy_version,
            purpose=dict(purpose or {}),
            legal_basis=legal_basis,
            topic=None,
            content=None,
            source_digest=source_digest,
            shared=(),
            altered=(),
            withheld=(),
            reason=reason,
            reason_params=dict(reason_params or {}),
            text_de=text_de,
            text_en=text_en,
            subject=subject,
        )

    @property
    def chain(self) -> str:
        return GATEWAY_CHAIN if self.customer is None else self.customer


@dataclass(slots=True)  # not frozen: one is built per entry, and frozen __init__ costs 2x
class AppendedEntry:
    """Where a draft landed: ``seq`` is global, ``index`` the position in the customer's chain."""

    seq: int
    customer: str
    index: int
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: ``customer``'s chain at ``origin`` had ``size`` entries ending in
    ``head`` at time ``at``, signed by ``key_id``."""

    origin: str
    customer: str
    size: int
    head: bytes
    at: datetime
    key_id: bytes
    signature: bytes


def draft_from_decision(
    decision: Decision,
    *,
    at: datetime,
    source_digest: bytes,
    text_de: str,
    text_en: str,
    kind: str = "decision",
    shape: tuple[object, ...] | None = None,
    supersedes: int | None = None,
) -> EntryDraft:
    """The entry recording ``decision``; content is the payload exactly as it leaves the box."""
    reason = decision.reason
    return EntryDraft(
        kind=kind,
        at=at,
        customer=decision.customer,
        device=decision.device,
        recipient=decision.recipient,
        outcome=str(decision.outcome),
        grant=decision.grant,
        policy_version=decision.policy_version,
        purpose=dict(decision.purpose),
        legal_basis=None if decision.legal_basis is None else str(decision.legal_basis),
        topic=decision.topic,
        content=decision.payload,
        source_digest=source_digest,
        shared=tuple(decision.shared),
        altered=tuple((a.path, a.treatment, a.detail) for a in decision.altered),
        withheld=tuple(decision.withheld),
        reason=None if reason is None else reason.code,
        reason_params={} if reason is None else dict(reason.params),
        text_de=text_de,
        text_en=text_en,
        omitted=dict(decision.omitted),
        shape=shape,
        supersedes=supersedes,
    )


def body_key(draft: EntryDraft) -> tuple[object, ...]:
    """A hashable key equal for drafts with equal bodies (a cache key; not hashed into proofs)."""
    return (
        draft.kind,
        draft.customer,
        draft.device,
        draft.recipient,
        draft.outcome,
        draft.grant,
        draft.policy_version,
        tuple(draft.purpose.items()),
        draft.legal_basis,
        draft.shared,
        draft.altered,
        draft.withheld,
        draft.reason,
        tuple(draft.reason_params.items()),
        draft.text_de,
        draft.text_en,
        draft.subject,
        tuple(draft.omitted.items()),
        draft.supersedes,
    )


def check_draft(draft: EntryDraft) -> None:
    if draft.kind not in KINDS:
        raise EntryInvalid("kind", f"expected one of {sorted(KINDS)}, found {draft.kind!r}")
    if draft.outcome not in OUTCOMES:
        raise EntryInvalid(
            "outcome", f"expected shared, altered, withheld or None, found {draft.outcome!r}"
        )
    if draft.customer == GATEWAY_CHAIN:
        raise EntryInvalid("customer", f"{GATEWAY_CHAIN!r} is reserved; pass None instead")
    if len(draft.source_digest) != 32:
        raise EntryInvalid(
            "source_digest", f"expected 32 bytes of SHA-256, found {len(draft.source_digest)}"
        )
    if draft.at.utcoffset() is None:
        raise EntryInvalid("at", "expected an aware UTC datetime, found a naive one")


# Kinds whose reason parameters may carry what a device or a person chose (a field path, the
# name of whoever gave consent or asked for an erasure): in the names document. The gateway's own
# records (key rotation, retention, the seal of an old chain) keep theirs in the body, where a
# stranger's verifier reads them: keys, signatures, dates and counts, no names.
NAMED_PARAMS = frozenset({"decision", "consent_given", "consent_withdrawn", "erasure"})


def names_of(draft: EntryDraft) -> NamesDocument:
    """The entry's names document: what a device or a person chose, as the body held it in clear
    before names were committed (field paths are a device's JSON keys; the reason's parameters
    carry people's names; the texts carry the device's display name, its keys and those names)."""
    doc: NamesDocument = {
        "shared": list(draft.shared),
        "altered": [list(a) for a in draft.altered],
        "withheld": list(draft.withheld),
        "text_de": draft.text_de,
        "text_en": draft.text_en,
    }
    if draft.kind in NAMED_PARAMS:
        doc["reason_params"] = dict(draft.reason_params)
    return doc


def body_of(draft: EntryDraft, names: bytes, supersedes: int | None = None) -> BodyV2:
    """The repeated part of an entry, as the JSON object its digest is taken over.

    Version 2: every value in it is the policy's or the gateway's (kinds, ids, grant, purpose,
    legal basis, reason code, counts, the parameters of the gateway's own records); what a device
    or a person chose is in the names document, present here only as its commitment ``names``
    (``gateway.log.names``).
    """
    body: BodyV2 = {
        "v": 2,
        "kind": draft.kind,
        "customer": draft.customer,
        "device": draft.device,
        "recipient": draft.recipient,
        "outcome": draft.outcome,
        "grant": draft.grant,
        "policy_version": draft.policy_version,
        "purpose": dict(draft.purpose),
        "legal_basis": draft.legal_basis,
        "reason": draft.reason,
        "subject": draft.subject,
        "names": names.hex(),
    }
    if draft.kind not in NAMED_PARAMS:
        body["reason_params"] = dict(draft.reason_params)
    if draft.omitted:
        body["omitted"] = dict(draft.omitted)
    if supersedes is not None:  # the tree index of ``draft.supersedes``, found by the writer
        body["supersedes"] = supersedes
    return body
