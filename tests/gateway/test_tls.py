"""The TLS context of a link to a recipient's broker: files the installer configured, and errors
that name the file and the configuration key instead of OpenSSL's bare message."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gateway.messages.tls import TlsError, TlsSettings, ssl_context
from tests.security.test_tls import self_signed


def test_a_ca_and_a_client_certificate_make_a_verifying_context(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl_context(
        TlsSettings(ca_file=str(cert), cert_file=str(cert), key_file=str(key)), "upstream x"
    )
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "localhost"),),)]


def test_skipping_verification_is_only_what_the_installer_asked_for(tmp_path: Path) -> None:
    context = ssl_context(TlsSettings(insecure_skip_verify=True), "upstream x")
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname


def test_a_missing_ca_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(TlsError) as caught:
        ssl_context(TlsSettings(ca_file=str(missing)), "upstream oven-maker")
    text = str(caught.value)
    assert text.startswith("upstream oven-maker: cannot use the CA file")
    assert str(missing) in text and "tls.ca_file" in text


def test_a_key_that_does_not_match_names_both_files(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path / "a")
    _, other_key = self_signed(tmp_path / "b")
    with pytest.raises(TlsError) as caught:
        ssl_context(TlsSettings(cert_file=str(cert), key_file=str(other_key)), "upstream x")
    text = str(caught.value)
    assert str(cert) in text and str(other_key) in text
    assert "tls.cert_file, tls.key_file" in text
