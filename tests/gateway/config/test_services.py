"""The portal and the witnesses: no password over plain HTTP off loopback, and a witness key
is a cosigner key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from gateway.config.services import LOOPBACK, PortalConfig, WitnessConfig
from gateway.log.note import COSIGNATURE_TYPE, ED25519_TYPE, Signer


def vkey(sig_type: int) -> str:
    return Signer("witness.example.org/w1", Ed25519PrivateKey.generate(), sig_type).verifier.vkey


def witness(**changes: object) -> WitnessConfig:
    fields = {"name": "verband", "url": "https://witness.example.org:7380"}
    fields["vkey"] = vkey(COSIGNATURE_TYPE)
    return WitnessConfig.model_validate({**fields, **changes})


def test_plain_http_only_on_loopback() -> None:
    for host in LOOPBACK:
        assert PortalConfig(host=host, plain_http=True).plain_http
    with pytest.raises(ValidationError, match="passwords would cross the network unencrypted"):
        PortalConfig(host="0.0.0.0", plain_http=True)
    assert PortalConfig().plain_http is False and PortalConfig().port == 8443


def test_an_own_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        PortalConfig(cert_file=Path("portal.crt"))
    assert PortalConfig(cert_file=Path("a.crt"), key_file=Path("a.key")).key_file == Path("a.key")


def test_a_witness_with_a_cosigner_key_is_accepted() -> None:
    w = witness()
    assert w.name == "verband" and w.vkey.startswith("witness.example.org/w1+")


def test_a_checkpoint_signing_key_is_not_a_witness_key() -> None:
    with pytest.raises(ValidationError, match="this is type 0x01"):
        witness(vkey=vkey(ED25519_TYPE))
    with pytest.raises(ValidationError, match="vkey"):
        witness(vkey="not a key")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("url", "ftp://witness.example.org", "expected http(s)://host:port"),
        ("url", "https://", "expected http(s)://host:port"),
        ("name", "Verband", "lower-case"),
        ("timeout_s", 0, "timeout_s"),
    ],
)
def test_a_wrong_witness_entry_is_refused(key: str, value: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        witness(**{key: value})
