"""What the TUI shows, as plain data: rows, details, the overview, customers' policies.

A ``DataSource`` (``tui.source``) produces these; widgets only render them. Texts come in both
languages (``{"de": ..., "en": ...}``) so switching language never goes back to the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import JsonValue

from gateway.operations.control_model import ConsentReply, CustomerPolicies, GrantInfo
from gateway.operations.portal.store import ErasureRequest
from gateway.operations.status_model import Status

__all__ = [
    "CheckpointProof",
    "CustomerPolicy",
    "Detail",
    "GrantView",
    "Names",
    "Overview",
    "RecipientStats",
    "Row",
]


@dataclass(frozen=True, slots=True)
class Names:
    """Human names for ids: devices (from the customers' policies), recipients (configuration)."""

    devices: Mapping[str, str] = field(default_factory=dict)
    recipients: Mapping[str, str] = field(default_factory=dict)
    customers: Mapping[str, str] = field(default_factory=dict)

    def device(self, device: str | None) -> str:
        return "" if device is None else self.devices.get(device, device)

    def recipient(self, recipient: str | None) -> str:
        return "" if recipient is None else self.recipients.get(recipient, recipient)

    def customer(self, customer: str | None) -> str:
        return "" if customer is None else self.customers.get(customer, customer)


@dataclass(frozen=True, slots=True)
class Row:
    """One log entry as a line of the live log."""

    seq: int
    at_us: int
    kind: str
    customer: str | None
    device: str | None
    recipient: str | None
    outcome: str | None  # shared | altered | withheld | None (not a decision)
    purpose: Mapping[str, str]
    summary: Mapping[str, str]  # the first sentence of the explanation, per language
    hit: bool = False  # matches the current find query


@dataclass(frozen=True, slots=True)
class CheckpointProof:
    size: int
    at_us: int
    key_fingerprint: str
    signature_valid: bool
    head_matches: bool  # the chain walked from this entry reaches the signed head


@dataclass(frozen=True, slots=True)
class Detail:
    """Everything about one entry: the explanation, what left the box, and its proof."""

    row: Row
    grant: str | None
    policy_version: str | None
    legal_basis: str | None
    shared: tuple[str, ...]
    altered: tuple[tuple[str, str, str], ...]  # (path, treatment, detail)
    withheld: tuple[str, ...]
    reason: str | None
    reason_params: Mapping[str, str]
    texts: Mapping[str, str]  # language -> the full explanation
    topic: str | None
    content: bytes | None
    erased: bool  # content was committed to but has been forgotten on request
    chain: str
    index: int
    entry_hash: bytes
    link_valid: bool  # recomputed from the previous entry's hash
    checkpoint: CheckpointProof | None
    key_fingerprint: str | None


@dataclass(frozen=True, slots=True)
class RecipientStats:
    recipient: str
    last_hour: int
    last_day: int
    withheld_day: int
    fields_sent: tuple[str, ...]
    never_sent: tuple[str, ...]  # fields withheld from it and never once sent in the window
    buckets: tuple[int, ...]  # messages per bucket, oldest first


@dataclass(frozen=True, slots=True)
class Overview:
    now_us: int
    bucket_s: int
    recipients: tuple[RecipientStats, ...]
    status: Status | None  # the gateway's ``status`` answer; None: not running
    # Customers' erasure requests from the portal not yet carried out (installer's view only).
    erasure_requests: tuple[ErasureRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant as the TUI shows it, built only by ``from_info`` from the control API's
    ``GrantInfo``: the running gateway's ``policies`` reply and the policy files read without a
    gateway (``grant_info``) arrive as that one model, so the two views cannot disagree."""

    id: str
    recipient: str
    recipient_name: str
    purpose: Mapping[str, str]
    legal_basis: str
    consent: Mapping[str, JsonValue] | None
    withdrawn: bool  # held back by any right (consent withdrawn, objection, restriction)
    fields: tuple[str, ...]
    devices: tuple[str, ...]
    held_by: str | None = None  # "consent" | "objection" | "restriction" | None
    lapsed: str | None = None  # not in force by its own dates (control_model.GrantInfo.lapsed)
    # What the customer can do to hold it back, the intended action first (gateway/rights/consent.py)
    actions: tuple[str, ...] = ()
    # What it sends and how, per language (policies.describe.what_is_sent, as `describe` says it)
    sends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: GrantInfo) -> GrantView:
        return cls(
            id=info.id,
            recipient=info.recipient,
            recipient_name=info.recipient_name or info.recipient,
            purpose=info.purpose,
            legal_basis=info.legal_basis,
            consent=info.consent,
            withdrawn=info.withdrawn,
            fields=tuple(info.fields),
            devices=tuple(info.devices),
            held_by=info.held_by,
            lapsed=info.lapsed,
            actions=tuple(info.actions),
            sends={lang: tuple(lines) for lang, lines in info.sends.items()},
        )


@dataclass(frozen=True, slots=True)
class RightResult:
    """The gateway's answer to a rights action (its ``RightAnswer``), as the TUI shows it."""

    action: str
    changed: bool
    message: str
    kind: str
    entry_seq: int
    by: str
    at: str
    receipt: Mapping[str, JsonValue] | None

    @classmethod
    def from_reply(cls, reply: ConsentReply) -> RightResult:
        return cls(
            action=reply.action,
            changed=reply.changed,
            message=reply.message,
            kind=reply.kind,
            entry_seq=reply.entry_seq,
            by=reply.by,
            at=reply.at,
            receipt=reply.receipt,
        )


@dataclass(frozen=True, slots=True)
class CustomerPolicy:
    customer: str
    name: str
    language: str
    version: str | None
    describe: Mapping[str, str]  # the engine's own plain-language summary, when running
    grants: tuple[GrantView, ...]
    error: str | None = None

    @classmethod
    def from_reply(cls, reply: CustomerPolicies) -> CustomerPolicy:
        return cls(
            customer=reply.customer,
            name=reply.name or reply.customer,
            language=reply.language or "de",
            version=reply.version,
            describe=reply.describe,
            grants=tuple(GrantView.from_info(g) for g in reply.grants),
            error=reply.error,
        )
