"""The Art. 30 records of processing activities as typed documents: what ``build_records``
returns and what its three renderings (text, CSV, JSON-LD) and ``--format json`` read.

The JSON form is an interface (installers hand it to their data-protection officer's tools),
so its keys are written down here once; a renamed or dropped key is a type error in every
reader, not a ``KeyError`` when the officer's export runs.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "Activity",
    "BoxRetention",
    "Category",
    "Consent",
    "DeviceRef",
    "Limits",
    "Records",
    "Transport",
]


class Label(TypedDict):
    de: str
    en: str


class Category(TypedDict, total=False):
    """A data category from the covered devices' profiles, or a bare field (category None)."""

    category: str | None
    personal: str  # only for a profile's category
    label: dict[str, str]  # language -> label
    fields: list[str]


class Consent(TypedDict):
    """The grant's consent record (``policies.model.ConsentRecord``), dates in ISO 8601."""

    given_by: str
    given_at: str
    until: str | None
    reference: str | None


class Transport(TypedDict):
    host: str
    tls: bool


class DeviceRef(TypedDict):
    id: str
    name: str
    kind: str
    profile: str | None


class Limits(TypedDict):
    """A customer's retention limits (``policies.model.RetentionSpec``); None: kept."""

    content_days: int | None
    entries_years: int | None


class Activity(TypedDict):
    """One processing activity: one grant of one customer's policy."""

    customer: str
    customer_name: str
    policy_version: str
    grant: str
    purpose: dict[str, str]
    legal_basis: str
    consent: Consent | None
    recipient: str
    recipient_name: str
    transport: Transport | None
    devices: list[DeviceRef]
    categories: list[Category]
    fields: dict[str, str]  # path -> how it leaves (keep, coarsen, pseudonymise, ...)
    safeguards: list[str]
    retention: Limits
    valid_from: str | None
    valid_until: str | None


class BoxRetention(TypedDict):
    log: Limits  # the box's default
    outbox_max_rows: int
    pseudonym_keys: str


class Records(TypedDict):
    format: str
    gateway: str
    generated_at: str
    retention: BoxRetention
    activities: list[Activity]
