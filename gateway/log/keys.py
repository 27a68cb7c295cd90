"""Ed25519 signing keys for the explanation log: files, fingerprints, signing.

A private key file is PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519`` writes) or the raw
32-byte seed. It is created with mode 0600 and refused on load when its group or others may read
it: a key anyone on the box can read proves nothing. A public key is accepted as PEM
(SubjectPublicKeyInfo), as 64 hex digits, or as a file holding either.

The key id is SHA-256 of the raw 32-byte public key; people see it as a fingerprint
``ed25519:ab12 cd34 …`` (the first 16 bytes in groups of two).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import KeyFileError
from gateway.log import note

__all__ = [
    "PublicKey",
    "Signer",
    "fingerprint",
    "key_id_of",
    "load_public_key",
]


def key_id_of(raw_public: bytes) -> bytes:
    """The key id: SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public).digest()


def fingerprint(key_id: bytes) -> str:
    """``ed25519:ab12 cd34 …``: the first 16 bytes of the key id, for people to compare."""
    text = key_id[:16].hex()
    return "ed25519:" + " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key with its id; ``verify`` returns a bool and never raises."""

    raw: bytes

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_id)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


def _parse_public(text: str, where: str) -> PublicKey:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except ValueError as exc:
            raise KeyFileError(where, f"not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(where, f"expected an Ed25519 key, found {type(key).__name__}")
        return PublicKey(key.public_bytes_raw())
    try:
        raw = bytes.fromhex(stripped)
    except ValueError as exc:
        raise KeyFileError(where, "expected a PEM public key or 64 hex digits") from exc
    if len(raw) != 32:
        raise KeyFileError(where, f"expected 32 bytes of public key, found {len(raw)}")
    return PublicKey(raw)


def load_public_key(path_or_text: str | os.PathLike[str]) -> PublicKey:
    """A public key from a file (PEM or hex) or from the text itself."""
    if isinstance(path_or_text, str) and (
        path_or_text.strip().startswith("-----BEGIN") or len(path_or_text.strip()) == 64
    ):
        return _parse_public(path_or_text, "public key")
    path = Path(path_or_text)
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(str(path), f"cannot read public key: {exc}") from exc
    if "PRIVATE KEY" in text:
        raise KeyFileError(str(path), "this is a private key; pass the public key")
    return _parse_public(text, str(path))


class Signer:
    """An Ed25519 private key that signs checkpoints and rotation records."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private = private
        self.path = path
        self.public = PublicKey(private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, path: str | os.PathLike[str] | None = None) -> Signer:
        """A new key; with ``path``, written there as PEM with mode 0600 (never overwriting)."""
        private = Ed25519PrivateKey.generate()
        if path is None:
            return cls(private)
        target = Path(path)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyFileError(
                str(target), "a key file already exists; refusing to overwrite"
            ) from exc
        except OSError as exc:
            raise KeyFileError(str(target), f"cannot create key file: {exc}") from exc
        try:
            os.fchmod(fd, 0o600)  # the umask may have narrowed it; never widened
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(private, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Signer:
        """Load a private key file, refusing one that group or others can read or write."""
        target = Path(path)
        try:
            mode = target.stat().st_mode
        except OSError as exc:
            raise KeyFileError(str(target), f"cannot read private key: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                str(target),
                f"private key is accessible by group or others: expected mode 0600, found "
                f"{stat.S_IMODE(mode):04o} (fix with: chmod 600 {target})",
            )
        data = target.read_bytes()
        if len(data) == 32:
            return cls(Ed25519PrivateKey.from_private_bytes(data), target)
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(
                str(target), "expected an unencrypted PEM Ed25519 key or a 32-byte seed"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(
                str(target), f"expected an Ed25519 key, found {type(private).__name__}"
            )
        return cls(private, target)

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def note_signer(self, name: str) -> note.Signer:
        """This key signing C2SP notes under ``name`` (a log's origin is its key name)."""
        return note.Signer(name, self._private)
