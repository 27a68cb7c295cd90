"""What the log's reader returns: frozen, typed results (and the filter it takes).

Nothing here runs a query; ``gateway.log.reader`` builds these. Names of devices, recipients and
customers are the log's ids; display names are the caller's business.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from gateway.log.documents import ShownBody

__all__ = [
    "Body",
    "CheckpointInfo",
    "EntryDetail",
    "EntryFacts",
    "EntryFilter",
    "EntryLine",
    "EntryRow",
    "LogState",
    "Match",
    "RecipientCount",
    "ReportData",
    "ReportGroup",
    "ReportSingle",
    "Stats",
]


@dataclass(frozen=True, slots=True)
class Match:
    """An id (device, recipient or customer) containing ``contains`` (casefolded), or one of
    ``exactly``. ``contains=None`` matches by ``exactly`` alone."""

    contains: str | None = None
    exactly: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Entries passing every non-empty part (each part: any of its matches)."""

    devices: tuple[Match, ...] = ()
    recipients: tuple[Match, ...] = ()
    customers: tuple[Match, ...] = ()
    outcomes: tuple[str, ...] = ()
    body_ids: frozenset[int] | None = None  # None: any body; empty: none


@dataclass(frozen=True, slots=True)
class Body:
    """The repeated part of entries, stored once: the decoded document and its two texts."""

    id: int
    digest: bytes
    doc: ShownBody
    texts: Mapping[str, str]  # "de", "en"

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind") or "")

    @property
    def customer(self) -> str | None:
        value = self.doc.get("customer")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EntryLine:
    """One narrow entries row, ids unresolved (a page row costs no extra query)."""

    seq: int
    at_us: int
    chain_id: int
    index: int
    body_id: int
    device_id: int | None
    recipient_id: int | None
    outcome: str | None
    hit: bool = False


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """Everything stored about one entry (its proof is ``Reader.proof``)."""

    line: EntryLine
    chain: str
    source: bytes
    commitment: bytes | None
    entry_hash: bytes
    content_held: bool
    content: bytes | None
    topic: str | None  # None once erased (or never held)


@dataclass(frozen=True, slots=True)
class RecipientCount:
    recipient_id: int
    body_id: int
    bucket: int
    count: int


@dataclass(frozen=True, slots=True)
class EntryRow:
    seq: int
    at: datetime
    customer: str
    index: int
    kind: str
    device: str | None
    recipient: str | None
    outcome: str | None
    text_de: str
    text_en: str


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    customer: str
    size: int
    head: bytes
    at: datetime
    key_fingerprint: str
    signature_valid: bool


@dataclass(frozen=True, slots=True)
class EntryDetail:
    row: EntryRow
    grant: str | None
    policy_version: str | None
    purpose: dict[str, str]
    legal_basis: str | None
    shared: tuple[str, ...]
    altered: tuple[tuple[str, str, str], ...]
    withheld: tuple[str, ...]
    reason: str | None
    reason_params: dict[str, str]
    subject: str | None
    topic: str | None  # None once erased (or never held)
    content: bytes | None
    source_digest: bytes
    commitment: bytes | None
    entry_hash: bytes
    checkpoint: CheckpointInfo | None  # the first checkpoint covering this entry, if any yet


@dataclass(slots=True)
class Stats:
    """An overview over a time window: per recipient messages and fields sent, outcome counts."""

    messages: Counter[str] = field(default_factory=Counter)
    fields_sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class LogState:
    """Where one log stands, cheap to read: a view built from the whole log (the access report)
    is the same while these are. Entries are only appended (forgetting and retention append
    their own signed entry), checkpoints only added, keys only added by a rotation."""

    latest_seq: int  # the newest entry (0: none)
    checkpoint_id: int  # the newest checkpoint, by size (0: none)
    key_id: int  # the newest signing key's row (0: none)


class ReportGroup(NamedTuple):
    """The entries of one distinct body, counted for a report."""

    body: ShownBody
    entries: int  # how many (``count`` is the tuple's own method)
    first_us: int  # the first entry's time, µs
    last_us: int  # the last entry's time, µs


class ReportSingle(NamedTuple):
    """One entry of a rare (non-decision) kind, for a report."""

    seq: int
    at_us: int
    body: ShownBody


@dataclass(frozen=True, slots=True)
class ReportData:
    """What a customer's report is built from: their chain's entries grouped by body."""

    origin: str
    known: bool  # the customer has a chain in this log
    groups: tuple[ReportGroup, ...]  # one per distinct body
    singles: tuple[ReportSingle, ...]  # in log order
    texts: Mapping[str, str]  # hex digest -> text, for the singles' explanations
