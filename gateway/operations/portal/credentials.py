"""Passwords, one-time tokens and TOTP codes of the portal's accounts.

Passwords are hashed with scrypt (``hashlib.scrypt``, N=2^14, r=8, p=1: ~16 MiB and ~50 ms per
check), each with its own salt, stored as ``scrypt$N$r$p$salt$hash``. The installer never sees a
password: the customer sets it in their browser from a one-time invitation. Invitation and
session tokens are 32 random bytes; only their SHA-256 is stored, so a copy of ``portal.db``
opens no session. TOTP (RFC 6238, 6 digits, 30 s, SHA-1 as every authenticator app expects) is
``cryptography``'s, never our own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import quote

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "base32",
    "check_password",
    "check_totp",
    "hash_password",
    "new_token",
    "new_totp_secret",
    "token_digest",
    "totp_code",
    "totp_step",
    "totp_uri",
]

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # bounds the cost of hashing what a stranger types into the login form
_N, _R, _P = 1 << 14, 8, 1
_TOTP_DIGITS, _TOTP_STEP = 6, 30


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed record never matches."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        found = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


def new_token() -> str:
    """A URL-safe secret of 32 random bytes (an invitation or a session)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored for a token: its SHA-256 (the token itself is only ever in the link or
    the cookie)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_totp_secret() -> bytes:
    return secrets.token_bytes(20)


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, _TOTP_DIGITS, SHA1(), _TOTP_STEP, enforce_key_length=False)


def totp_step(secret: bytes, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for: ``now``'s or the one before (a code typed as it
    turns over still counts); None when it is neither. The caller refuses a step already used
    (RFC 6238 §5.2: a code is accepted once)."""
    code = code.strip().replace(" ", "")
    if len(code) != _TOTP_DIGITS or not code.isdigit():
        return None
    totp = _totp(secret)
    for at in (now, now - _TOTP_STEP):
        try:
            totp.verify(code.encode("ascii"), int(at))
        except InvalidToken:
            continue
        return int(at) // _TOTP_STEP
    return None


def check_totp(secret: bytes, code: str, now: float) -> bool:
    """The code for ``now`` or the step before (setting TOTP up: no replay to guard yet)."""
    return totp_step(secret, code, now) is not None


def totp_code(secret: bytes, now: float) -> str:
    """The current code (what the customer's authenticator app shows; the tests type it)."""
    return _totp(secret).generate(int(now)).decode("ascii")


def totp_uri(secret: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://`` address an authenticator app reads (as text or as a QR code)."""
    return _totp(secret).get_provisioning_uri(quote(account), issuer)


def base32(secret: bytes) -> str:
    """The secret as authenticator apps take it typed in."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")
