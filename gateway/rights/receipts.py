"""Receipts: small signed documents a customer keeps as proof of a consent given or withdrawn.

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

__all__ = ["ReceiptInvalid", "make_receipt", "verify_receipt"]

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
