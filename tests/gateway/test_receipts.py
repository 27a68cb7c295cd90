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
    assert verify_receipt(orjson.dumps(receipt), signer.public) == FIELDS
    assert verify_receipt(receipt, signer.public) == FIELDS


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
    [b"not json", b"{}", b'{"receipt": [], "key_id": "00", "signature": ""}', b'{"receipt": {}}'],
)
def test_what_is_not_a_receipt_says_so(document: bytes) -> None:
    with pytest.raises(ReceiptInvalid, match="not an Einblick receipt"):
        verify_receipt(document, Signer.generate().public)
