"""The entries the log writes about itself say what a verifier reads, in both languages."""

from __future__ import annotations

import pytest

from gateway.errors import EntryInvalid
from gateway.log.keys import Signer
from gateway.log.leaf import rotation_message_v2
from gateway.log.notices import erasure_draft, parse_subject, rotation_draft, seal_draft
from tests.log.conftest import T0


def test_a_subject_is_a_customer_or_one_of_its_devices() -> None:
    assert parse_subject("baeckerei") == ("baeckerei", None)
    assert parse_subject("baeckerei/oven-1") == ("baeckerei", "oven-1")
    assert parse_subject("baeckerei/") == ("baeckerei", None)
    with pytest.raises(EntryInvalid, match="customer/device"):
        parse_subject("/oven-1")


def test_an_erasure_names_its_subject_and_who_asked() -> None:
    draft = erasure_draft("baeckerei/oven-1", T0, "customer", 12)
    assert (draft.kind, draft.customer, draft.device, draft.subject) == (
        "erasure",
        "baeckerei",
        "oven-1",
        "baeckerei/oven-1",
    )
    assert draft.reason_params == {"requested_by": "customer", "entries": "12"}
    assert "Gerät oven-1" in draft.text_de and "12 Einträge" in draft.text_de
    assert "device oven-1" in draft.text_en
    whole = erasure_draft("baeckerei", T0, "installer", 0, text_en="custom")
    assert whole.device is None and "allen Geräten" in whole.text_de
    assert whole.text_en == "custom"


def test_a_rotation_carries_both_keys_and_both_signatures() -> None:
    old, new = Signer.generate(), Signer.generate()
    record = rotation_message_v2("box/baeckerei", 4, old.public.raw, new.public.raw)
    draft = rotation_draft("baeckerei", T0, old, new, record)
    params = draft.reason_params
    assert params["old"] == old.public.raw.hex() and params["new"] == new.public.raw.hex()
    assert old.public.verify(bytes.fromhex(params["sig_old"]), record)
    assert new.public.verify(bytes.fromhex(params["sig_new"]), record)
    assert old.fingerprint in draft.text_de and new.fingerprint in draft.text_en


def test_the_seal_records_the_old_chains_size_and_head() -> None:
    draft = seal_draft("_gateway", 41, b"\xab" * 32, T0)
    assert draft.customer is None and draft.reason == "log_sealed"
    assert draft.reason_params == {"legacy_size": "41", "legacy_head": "ab" * 32}
    assert "41" in draft.text_de and "ab" * 32 in draft.text_en
