"""What the TUI shows, as plain data: rows, details, the overview, customers' policies.

A ``DataSource`` (``tui.source``) produces these; widgets only render them. Texts come in both
languages (``{"de": ..., "en": ...}``) so switching language never goes back to the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    id: str
    recipient: str
    recipient_name: str
    purpose: Mapping[str, str]
    legal_basis: str
    consent: Mapping[str, Any] | None
    withdrawn: bool  # held back by any right (consent withdrawn, objection, restriction)
    fields: tuple[str, ...]
    devices: tuple[str, ...]
    held_by: str | None = None  # "consent" | "objection" | "restriction" | None
    # What the customer can do to hold it back, the intended action first (gateway/rights/consent.py)
    actions: tuple[str, ...] = ()
    # What it sends and how, per language (policies.describe.what_is_sent, as `describe` says it)
    sends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_op(cls, data: Mapping[str, Any]) -> GrantView:
        return cls(
            id=str(data["id"]),
            recipient=str(data["recipient"]),
            recipient_name=str(data.get("recipient_name") or data["recipient"]),
            purpose=dict(data.get("purpose") or {}),
            legal_basis=str(data.get("legal_basis") or ""),
            consent=data.get("consent"),
            withdrawn=bool(data.get("withdrawn")),
            fields=tuple(str(f) for f in data.get("fields") or ()),
            devices=tuple(str(d) for d in data.get("devices") or ()),
            held_by=None if data.get("held_by") is None else str(data["held_by"]),
            actions=tuple(str(a) for a in data.get("actions") or ()),
            sends={
                str(lang): tuple(str(line) for line in lines)
                for lang, lines in (data.get("sends") or {}).items()
            },
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
    receipt: Mapping[str, Any] | None

    @classmethod
    def from_op(cls, data: Mapping[str, Any]) -> RightResult:
        return cls(
            action=str(data.get("action") or ""),
            changed=bool(data.get("changed")),
            message=str(data.get("message") or ""),
            kind=str(data.get("kind") or ""),
            entry_seq=int(data.get("entry_seq") or 0),
            by=str(data.get("by") or ""),
            at=str(data.get("at") or ""),
            receipt=data.get("receipt"),
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
    def from_op(cls, data: Mapping[str, Any]) -> CustomerPolicy:
        return cls(
            customer=str(data["customer"]),
            name=str(data.get("name") or data["customer"]),
            language=str(data.get("language") or "de"),
            version=None if data.get("version") is None else str(data["version"]),
            describe=dict(data.get("describe") or {}),
            grants=tuple(GrantView.from_op(g) for g in data.get("grants") or ()),
            error=None if data.get("error") is None else str(data["error"]),
        )
