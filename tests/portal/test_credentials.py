"""Passwords (scrypt, salted, bounded), one-time tokens stored as digests, and TOTP codes: the
window of a step and the one before, and a code accepted once at login (RFC 6238 §5.2)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from gateway.operations.portal.credentials import (
    MAX_PASSWORD,
    base32,
    check_password,
    check_totp,
    hash_password,
    new_token,
    new_totp_secret,
    token_digest,
    totp_code,
    totp_step,
    totp_uri,
)
from gateway.operations.portal.store import PortalStore

PASSWORD = "a long enough password"
# RFC 6238 Appendix B: the SHA-1 seed and its 8-digit codes; ours are their last 6 digits.
RFC_SECRET = b"12345678901234567890"
RFC_VECTORS = {59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"}


def test_a_password_is_salted_scrypt_and_checks_only_itself() -> None:
    stored = hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(1 << 14), "8", "1")
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert check_password(PASSWORD, stored)
    assert not check_password(PASSWORD + " ", stored)
    assert hash_password(PASSWORD) != stored  # a new salt each time


def test_malformed_records_and_overlong_passwords_never_match() -> None:
    stored = hash_password(PASSWORD)
    for broken in ("", "scrypt$1$2", stored.replace("scrypt", "md5"), stored[:-2] + "zz"):
        assert not check_password(PASSWORD, broken), broken
    long = "x" * (MAX_PASSWORD + 1)
    assert not check_password(long, hash_password("x" * MAX_PASSWORD))


def test_tokens_are_random_and_only_their_digest_is_kept() -> None:
    token = new_token()
    assert len(token) >= 43 and token != new_token()
    assert token_digest(token) == hashlib.sha256(token.encode()).digest()


def test_totp_codes_are_rfc_6238s() -> None:
    for at, code in RFC_VECTORS.items():
        assert totp_code(RFC_SECRET, at) == code, at
        assert check_totp(RFC_SECRET, code, at)


def test_the_window_is_this_step_and_the_one_before() -> None:
    secret = new_totp_secret()
    now = 1_800_000_015.0  # 15 s into a step
    code = totp_code(secret, now)
    step = int(now) // 30
    assert totp_step(secret, code, now) == step
    assert totp_step(secret, code, now + 30) == step  # typed as it turns over
    assert totp_step(secret, code, now + 60) is None  # two steps late
    assert totp_step(secret, code, now - 30) is None  # a code from the future
    assert totp_step(secret, f" {code[:3]} {code[3:]} ", now) == step  # as apps group it
    for bad in ("", "12345", "1234567", "abcdef"):
        assert totp_step(secret, bad, now) is None, bad


def test_a_totp_code_logs_in_once(tmp_path: Path) -> None:
    now = [1_800_000_015.0]
    store = PortalStore(tmp_path / "portal.db", clock=lambda: now[0])
    token, _ = store.invite("baeckerei", "Anna", 3600)
    store.accept(token, "anna", PASSWORD)
    secret = new_totp_secret()
    store.set_totp("anna", secret)
    code = totp_code(secret, now[0])
    assert store.login("anna", PASSWORD, code, 60).token is not None
    now[0] += 10
    assert store.login("anna", PASSWORD, code, 60).token is None  # replayed within its window
    now[0] += 30
    assert store.login("anna", PASSWORD, code, 60).token is None  # still the used step
    assert store.login("anna", PASSWORD, totp_code(secret, now[0]), 60).token is not None
    store.close()


def test_the_provisioning_address_names_the_account_and_the_secret() -> None:
    secret = new_totp_secret()
    uri = totp_uri(secret, "anna", "Einblick")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp" and "anna" in parts.path
    query = parse_qs(parts.query)
    assert query["secret"] == [base32(secret)] and query["issuer"] == ["Einblick"]
    assert "=" not in base32(secret)
