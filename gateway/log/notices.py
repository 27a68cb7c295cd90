"""The entries the log writes about itself: the seal of a 0.1.0 chain, an erasure, a key
rotation.

Each is an ``EntryDraft`` like a device decision's, appended by ``gateway.log.writer`` in the
caller's transaction; their bodies carry what a verifier reads (``gateway/log/SPEC.md`` §4–§5):
the sealed chain's size and final hash, the erased subject, the two keys and their signatures
over the rotation record. The texts say the same in German and English.
"""

from __future__ import annotations

from datetime import datetime

from gateway.errors import EntryInvalid
from gateway.log.chain import GATEWAY_CHAIN
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer

__all__ = ["erasure_draft", "parse_subject", "rotation_draft", "seal_draft"]


def parse_subject(subject: str) -> tuple[str, str | None]:
    """``"customer"`` or ``"customer/device"`` -> (chain, device or None)."""
    chain, sep, device = subject.partition("/")
    if not chain:
        raise EntryInvalid(
            "subject", f"expected 'customer' or 'customer/device', found {subject!r}"
        )
    return chain, (device if sep and device else None)


def seal_draft(chain: str, base: int, head: bytes, at: datetime) -> EntryDraft:
    """The first entry of a tree that continues a 0.1.0 chain: that chain's size and final hash."""
    return EntryDraft.record(
        "gateway_event",
        at,
        customer=None if chain == GATEWAY_CHAIN else chain,
        reason="log_sealed",
        reason_params={"legacy_size": str(base), "legacy_head": head.hex()},
        text_de=(
            f"Das Protokoll wird ab hier als Merkle-Baum geführt. Die bisherige Kette endet nach "
            f"{base} Einträgen mit dem Hash {head.hex()}."
        ),
        text_en=(
            f"From here on the log is kept as a Merkle tree. The previous chain ends after {base} "
            f"entries with the hash {head.hex()}."
        ),
    )


def erasure_draft(
    subject: str,
    at: datetime,
    requested_by: str,
    erased: int,
    *,
    text_de: str | None = None,
    text_en: str | None = None,
) -> EntryDraft:
    """The signed record that ``subject``'s personal content (``erased`` entries' worth) was
    destroyed at the request of ``requested_by``; the texts default to the standard wording."""
    chain, device = parse_subject(subject)
    what_de = f"Gerät {device}" if device else "allen Geräten"
    what_en = f"device {device}" if device else "all devices"
    draft = EntryDraft.record(
        "erasure",
        at,
        customer=chain,
        device=device,
        legal_basis="legal_obligation",
        reason="erased",
        reason_params={"requested_by": requested_by, "entries": str(erased)},
        text_de=text_de
        or (
            f"Auf Wunsch von {requested_by} wurden die persönlichen Inhalte von {what_de} "
            f"gelöscht ({erased} Einträge). Der Nachweis des Protokolls bleibt prüfbar."
        ),
        text_en=text_en
        or (
            f"At the request of {requested_by}, the personal content of {what_en} was "
            f"erased ({erased} entries). The log's proof still verifies."
        ),
        subject=subject,
    )
    return draft


def rotation_draft(
    customer: str | None, at: datetime, old: Signer, new: Signer, record: bytes
) -> EntryDraft:
    """A ``key_rotation`` entry: both keys and both keys' signatures over ``record`` (the
    rotation record message of this log, at this entry's index)."""
    draft = EntryDraft.record(
        "key_rotation",
        at,
        customer=customer,
        reason_params={
            "old": old.public.raw.hex(),
            "new": new.public.raw.hex(),
            "sig_old": old.sign(record).hex(),
            "sig_new": new.sign(record).hex(),
        },
        text_de=(
            f"Der Signaturschlüssel wurde gewechselt: alt {old.fingerprint}, neu {new.fingerprint}."
        ),
        text_en=(f"The signing key was rotated: old {old.fingerprint}, new {new.fingerprint}."),
    )
    return draft
