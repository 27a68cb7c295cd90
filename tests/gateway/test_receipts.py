"""A receipt verifies offline with the public key alone; any change to it, or another key, does
not, and the reason says which."""

from __future__ import annotations

import orjson
import pytest

from gateway.log.keys import Signer
from gateway.rights.receipts import ReceiptInvalid, make_receipt, verify_receipt

FIELDS = {"type": "consent_withdrawn", "customer": "berg-partner", "grant": "g", "by": "M. Berg"}


def test_a_receipt_verifies_as_bytes_or_as_an_object() -> None:
    signer = Signer.generate()
    receipt = make_receipt(signer, FIELDS)
    for document in (orjson.dumps(receipt), receipt):
        verified = verify_receipt(document, signer.public)
        assert verified.fields == FIELDS  # exactly what was signed, nothing added or dropped
        assert (verified.type, verified.customer, verified.grant, verified.at) == (
            "consent_withdrawn",
            "berg-partner",
            "g",
            None,
        )
        assert verified.key_id == signer.key_id.hex()


def test_an_altered_receipt_is_refused() -> None:
    signer = Signer.generate()
    receipt = make_receipt(signer, FIELDS)
    forged = {**receipt, "receipt": {**FIELDS, "by": "someone else"}}
    with pytest.raises(ReceiptInvalid, match="it was altered"):
        verify_receipt(forged, signer.public)


def test_another_key_is_named_not_silently_failed() -> None:
    receipt = make_receipt(Signer.generate(), FIELDS)
    with pytest.raises(ReceiptInvalid, match=r"signed by key [0-9a-f]{16}…, but the key given"):
        verify_receipt(receipt, Signer.generate().public)


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"{}",
        b'{"receipt": [], "key_id": "00", "signature": ""}',
        b'{"receipt": {}}',
        b'{"receipt": {}, "key_id": 7, "signature": ""}',
        b'{"receipt": {}, "key_id": "zz", "signature": ""}',
    ],
)
def test_what_is_not_a_receipt_says_so(document: bytes) -> None:
    with pytest.raises(ReceiptInvalid, match="not an Einblick receipt"):
        verify_receipt(document, Signer.generate().public)


def test_a_field_beside_the_signed_ones_is_refused_not_ignored() -> None:
    # Only ``receipt`` is signed: a note added beside it could be read as part of the proof.
    signer = Signer.generate()
    added = {**make_receipt(signer, FIELDS), "note": "approved by the operator"}
    with pytest.raises(ReceiptInvalid, match="note: Extra inputs are not permitted"):
        verify_receipt(added, signer.public)


def test_a_signed_document_without_a_type_or_customer_is_not_a_receipt() -> None:
    signer = Signer.generate()
    unnamed = make_receipt(signer, {"grant": "g", "by": "M. Berg"})
    with pytest.raises(ReceiptInvalid, match="lack 'type' or 'customer'"):
        verify_receipt(unnamed, signer.public)
