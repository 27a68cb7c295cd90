"""The access report's data (``einblick-report/1``), typed: what ``build_report`` returns, the JSON
export writes key for key, and the words (``gateway.rights.report_text``) read.

TypedDicts, not models: the report is JSON-ready data built once and rendered as is (orjson
writes a TypedDict as the plain dict it is), so the export stays byte for byte what it was, and
mypy checks every key the builder writes and the words read. The order of the keys here is the
order the builder writes them, which is the export's order.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = [
    "Consent",
    "Device",
    "Erasure",
    "FieldCount",
    "Grant",
    "NeverShared",
    "Notice",
    "PassedOnUnder",
    "Period",
    "PolicyRef",
    "Recipient",
    "Report",
    "Texts",
    "Verification",
    "Withheld",
]


class Texts(TypedDict):
    """An entry's explanation in both languages."""

    de: str
    en: str


class Period(TypedDict):
    first: str | None  # ISO time of the first counted entry
    last: str | None


class PolicyRef(TypedDict):
    version: str
    source: str  # the policy file's name (not its path: the box's layout stays on the box)


class Device(TypedDict):
    id: str
    name: str
    kind: str | None
    profile: str | None
    in_policy: bool
    shared: int
    altered: int
    withheld: int


class Grant(TypedDict):
    id: str
    purpose: dict[str, str]  # language -> text
    legal_basis: str
    devices: list[str]
    fields: list[str]


class FieldCount(TypedDict):
    field: str
    treatment: str  # "keep" or how it was altered
    detail: str
    count: int


class PassedOnUnder(TypedDict):
    """Messages passed on under one grant with the purpose and legal basis its entries record
    (the policy may have changed them since: ``grants`` are the current policy's)."""

    grant: str | None
    purpose: dict[str, str]  # language -> text
    legal_basis: str | None
    count: int


class Recipient(TypedDict):
    id: str
    name: str
    grants: list[Grant]
    under: list[PassedOnUnder]
    messages: int
    withheld: int
    devices: list[str]
    last: str | None
    fields: list[FieldCount]


class NeverShared(TypedDict):
    device: str
    nothing_left: bool
    fields: list[str]


class Withheld(TypedDict):
    reason: str
    params: dict[str, str]
    count: int


class Consent(TypedDict):
    grant: str | None
    recipient: str | None
    action: str  # recorded, given, withdrawn, objected, ... (gateway.rights.report)
    by: str
    at: str | None
    until: str | None
    entry_seq: int | None
    text: NotRequired[Texts]  # for an entry of the log, not for the policy's record


class Notice(TypedDict):
    """An erasure notice to a recipient (``gateway.rights.erasure_book.list_erasures``)."""

    notice: str  # 32 hex digits
    recipient: str
    delivered: bool
    acknowledged_at: str | None


class Erasure(TypedDict):
    entry_seq: int
    at: str | None
    subject: str | None  # the erased subject as the entry names it (customer or device)
    requested_by: str
    text: Texts
    notices: list[Notice]


class Verification(TypedDict):
    ok: bool
    entries: int
    checkpoints: int
    unsigned: int
    problem: str | None
    key_problems: list[str]
    keys: list[str]  # trusted key fingerprints
    pinned: bool


class Report(TypedDict):
    format: str
    customer: str
    name: str
    language: str
    timezone: str
    gateway: str
    generated_at: str
    since: str | None
    period: Period
    policy: PolicyRef | None
    devices: list[Device]
    recipients: list[Recipient]
    never_shared: list[NeverShared]
    withheld: list[Withheld]
    consents: list[Consent]
    erasures: list[Erasure]
    verification: Verification
