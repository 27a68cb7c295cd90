"""Receipts: small signed documents a customer keeps as proof of a consent given or withdrawn,
an objection or a restriction; and the same event as a DPV JSON-LD record a DPO's tools read.

    {"receipt": {...fields...}, "key_id": "<hex>", "signature": "<base64>"}

The signature is Ed25519 over ``b"einblick/receipt/v1\\0"`` + the sorted-key JSON of ``receipt``,
so it verifies offline with the gateway's public key alone (``einblick receipt verify``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from gateway.errors import GatewayError
from gateway.log.chain import canonical_json
from gateway.log.keys import PublicKey, Signer

__all__ = [
    "DPV_CONTEXT",
    "ReceiptInvalid",
    "RightEvent",
    "SignedReceipt",
    "VerifiedReceipt",
    "consent_record",
    "legal_basis_iri",
    "make_receipt",
    "verify_receipt",
]

_DOMAIN = b"einblick/receipt/v1\x00"


class ReceiptInvalid(GatewayError):
    """The receipt is malformed, or its signature does not verify with the given key."""


def make_receipt(signer: Signer, fields: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    body = dict(fields)
    signature = signer.sign(_DOMAIN + canonical_json(body))
    return {
        "receipt": body,
        "key_id": signer.key_id.hex(),
        "signature": base64.b64encode(signature).decode(),
    }


class SignedReceipt(BaseModel):
    """A receipt document as it arrives from a file, a control reply or a recipient's broker:
    its three parts, nothing else (a field added beside them would not be signed)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    receipt: dict[str, JsonValue]
    key_id: str
    signature: str


class VerifiedReceipt(BaseModel):
    """A receipt whose signature verified: ``fields`` exactly as they were signed, and the few
    every receipt has (consent, objection, restriction, erasure notice) read out typed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    customer: str
    grant: str | None  # a consent, objection or restriction; None on an erasure notice
    at: str | None  # when it was recorded (ISO 8601); an erasure notice says ``requested_at``
    key_id: str
    fields: dict[str, JsonValue]


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
    )


def verify_receipt(document: bytes | Mapping[str, JsonValue], key: PublicKey) -> VerifiedReceipt:
    """The receipt's fields if it verifies with ``key``; ReceiptInvalid saying why not."""
    try:
        doc = (
            SignedReceipt.model_validate_json(document)
            if isinstance(document, bytes)
            else SignedReceipt.model_validate(dict(document))
        )
    except ValidationError as exc:
        raise ReceiptInvalid(f"not an Einblick receipt: {_problems(exc)}") from exc
    try:
        key_id = bytes.fromhex(doc.key_id)
        signature = base64.b64decode(doc.signature, validate=True)
    except ValueError as exc:
        raise ReceiptInvalid(f"not an Einblick receipt: key_id or signature: {exc}") from exc
    if key_id != key.key_id:
        raise ReceiptInvalid(
            f"signed by key {key_id.hex()[:16]}…, but the key given is {key.key_id.hex()[:16]}…"
        )
    if not key.verify(signature, _DOMAIN + canonical_json(doc.receipt)):
        raise ReceiptInvalid("the signature does not match the receipt's content: it was altered")
    body = doc.receipt
    kind, customer, grant, at = (body.get(k) for k in ("type", "customer", "grant", "at"))
    # Signed by the key, yet not what a gateway writes: refused rather than shown half-read.
    if not isinstance(kind, str) or not isinstance(customer, str):
        raise ReceiptInvalid("not an Einblick receipt: the signed fields lack 'type' or 'customer'")
    if not isinstance(grant, str | None) or not isinstance(at, str | None):
        raise ReceiptInvalid("not an Einblick receipt: 'grant' or 'at' is not text")
    return VerifiedReceipt(
        type=kind, customer=customer, grant=grant, at=at, key_id=doc.key_id, fields=body
    )


# The W3C Data Privacy Vocabulary (w3id.org/dpv, v2) and its EU GDPR extension: the vocabulary
# ISO/IEC TS 27560 Annex A uses for consent records in JSON-LD.
DPV_CONTEXT: dict[str, str] = {
    "dpv": "https://w3id.org/dpv#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
# GDPR Art. 6(1)(a)-(f) as DPV's EU GDPR extension names them.
_BASES = {
    "consent": "eu-gdpr:A6-1-a",
    "contract": "eu-gdpr:A6-1-b",
    "legal_obligation": "eu-gdpr:A6-1-c",
    "vital_interests": "eu-gdpr:A6-1-d",
    "public_task": "eu-gdpr:A6-1-e",
    "legitimate_interests": "eu-gdpr:A6-1-f",
}
_STATUS = {"consent_given": "dpv:ConsentGiven", "consent_withdrawn": "dpv:ConsentWithdrawn"}
_RIGHTS = {
    "objection": "eu-gdpr:A21",
    "objection_lifted": "eu-gdpr:A21",
    "restriction": "eu-gdpr:A18",
    "restriction_lifted": "eu-gdpr:A18",
}


def legal_basis_iri(basis: str) -> str:
    """``consent`` → ``eu-gdpr:A6-1-a`` (compact IRI under ``DPV_CONTEXT``)."""
    return _BASES[basis]


class _EntryRef(BaseModel):
    """The log entry a receipt points at: the two of its fields the record names."""

    model_config = ConfigDict(frozen=True, strict=True)

    seq: int
    entry_hash: str


class RightEvent(BaseModel):
    """What a consent, objection or restriction receipt's ``fields`` say, read out typed for
    its JSON-LD twin (the fields themselves are signed as they are; nothing here is added)."""

    model_config = ConfigDict(frozen=True, strict=True)

    type: str
    gateway: str
    customer: str
    recipient: str
    purpose: dict[str, str] | None = None
    legal_basis: str
    by: str
    at: str
    log_entry: _EntryRef


def consent_record(
    fields: Mapping[str, JsonValue], *, recipient_name: str, customer_name: str
) -> dict[str, JsonValue]:
    """The event a receipt's ``fields`` describe, as JSON-LD with the DPV vocabulary: for a
    consent an ISO/IEC TS 27560 consent record (``dpv:ConsentRecord`` with its
    ``dpv:hasConsentStatus``); for an objection or a restriction the exercise of that right
    (``dpv:RightExerciseActivity``, ``dpv:hasRight`` GDPR Art. 21 or 18). The signed receipt
    stays the proof; this is its machine-readable twin, pointing at the same log entry."""
    event = RightEvent.model_validate(fields)
    gateway, customer, kind, entry = event.gateway, event.customer, event.type, event.log_entry
    base = f"urn:einblick:{gateway}:{customer}"
    purpose = event.purpose or {}
    record: dict[str, JsonValue] = {
        "@context": {**DPV_CONTEXT},
        "@id": f"{base}:entry:{entry.seq}",
        "dct:identifier": f"{gateway}/{customer}/{entry.seq}",
        "dct:created": {"@value": event.at, "@type": "xsd:dateTime"},
        "dct:source": {"@id": f"{base}:entry-hash:{entry.entry_hash}"},
        "dpv:hasDataSubject": {
            "@id": f"{base}",
            "@type": "dpv:DataSubject",
            "dpv:hasName": customer_name,
        },
        "dpv:isIndicatedBy": {"@type": "dpv:Entity", "dpv:hasName": event.by},
        "dpv:hasPurpose": {
            "@type": "dpv:Purpose",
            "dct:description": [
                {"@value": text, "@language": lang} for lang, text in sorted(purpose.items())
            ],
        },
        "dpv:hasLegalBasis": {"@id": legal_basis_iri(event.legal_basis)},
        "dpv:hasRecipient": {
            "@id": f"urn:einblick:{gateway}:recipient:{event.recipient}",
            "@type": "dpv:Recipient",
            "dpv:hasName": recipient_name,
        },
    }
    if kind in _STATUS:
        record["@type"] = "dpv:ConsentRecord"
        record["dct:conformsTo"] = "ISO/IEC TS 27560:2023"
        record["dpv:hasConsentStatus"] = {"@id": _STATUS[kind]}
    else:
        record["@type"] = "dpv:RightExerciseActivity"
        record["dpv:hasRight"] = {"@id": _RIGHTS[kind]}
        record["dct:description"] = kind.replace("_", " ")
    return record
