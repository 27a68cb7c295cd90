"""Receipts: small signed documents a customer keeps as proof of a consent given or withdrawn,
an objection or a restriction; and the same event as a DPV JSON-LD record a DPO's tools read.

    {"receipt": {...fields...}, "key_id": "<hex>", "signature": "<base64>"}

The signature is Ed25519 over ``b"einblick/receipt/v1\\0"`` + the sorted-key JSON of ``receipt``,
so it verifies offline with the gateway's public key alone (``einblick receipt verify``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.log.chain import canonical_json
from gateway.log.keys import PublicKey, Signer

__all__ = [
    "DPV_CONTEXT",
    "ReceiptInvalid",
    "consent_record",
    "legal_basis_iri",
    "make_receipt",
    "verify_receipt",
]

_DOMAIN = b"einblick/receipt/v1\x00"


class ReceiptInvalid(GatewayError):
    """The receipt is malformed, or its signature does not verify with the given key."""


def make_receipt(signer: Signer, fields: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(fields)
    signature = signer.sign(_DOMAIN + canonical_json(body))
    return {
        "receipt": body,
        "key_id": signer.key_id.hex(),
        "signature": base64.b64encode(signature).decode(),
    }


def verify_receipt(document: bytes | Mapping[str, Any], key: PublicKey) -> dict[str, Any]:
    """Return the receipt's fields if it verifies; raise ReceiptInvalid saying why not."""
    try:
        doc = orjson.loads(document) if isinstance(document, bytes) else dict(document)
        body = doc["receipt"]
        key_id = bytes.fromhex(doc["key_id"])
        signature = base64.b64decode(doc["signature"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ReceiptInvalid(f"not an Einblick receipt: {exc}") from exc
    if not isinstance(body, dict):
        raise ReceiptInvalid("not an Einblick receipt: 'receipt' is not an object")
    if key_id != key.key_id:
        raise ReceiptInvalid(
            f"signed by key {key_id.hex()[:16]}…, but the key given is {key.key_id.hex()[:16]}…"
        )
    if not key.verify(signature, _DOMAIN + canonical_json(body)):
        raise ReceiptInvalid("the signature does not match the receipt's content: it was altered")
    return body


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


def consent_record(
    fields: Mapping[str, Any], *, recipient_name: str, customer_name: str
) -> dict[str, Any]:
    """The event a receipt's ``fields`` describe, as JSON-LD with the DPV vocabulary: for a
    consent an ISO/IEC TS 27560 consent record (``dpv:ConsentRecord`` with its
    ``dpv:hasConsentStatus``); for an objection or a restriction the exercise of that right
    (``dpv:RightExerciseActivity``, ``dpv:hasRight`` GDPR Art. 21 or 18). The signed receipt
    stays the proof; this is its machine-readable twin, pointing at the same log entry."""
    gateway, customer, kind = fields["gateway"], fields["customer"], fields["type"]
    entry = fields["log_entry"]
    base = f"urn:einblick:{gateway}:{customer}"
    purpose = fields.get("purpose") or {}
    record: dict[str, Any] = {
        "@context": DPV_CONTEXT,
        "@id": f"{base}:entry:{entry['seq']}",
        "dct:identifier": f"{gateway}/{customer}/{entry['seq']}",
        "dct:created": {"@value": fields["at"], "@type": "xsd:dateTime"},
        "dct:source": {"@id": f"{base}:entry-hash:{entry['entry_hash']}"},
        "dpv:hasDataSubject": {
            "@id": f"{base}",
            "@type": "dpv:DataSubject",
            "dpv:hasName": customer_name,
        },
        "dpv:isIndicatedBy": {"@type": "dpv:Entity", "dpv:hasName": fields["by"]},
        "dpv:hasPurpose": {
            "@type": "dpv:Purpose",
            "dct:description": [
                {"@value": text, "@language": lang} for lang, text in sorted(purpose.items())
            ],
        },
        "dpv:hasLegalBasis": {"@id": legal_basis_iri(fields["legal_basis"])},
        "dpv:hasRecipient": {
            "@id": f"urn:einblick:{gateway}:recipient:{fields['recipient']}",
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
