"""Signed notes, checkpoints, cosignatures and single-entry proofs in the C2SP formats.

Everything a customer keeps or hands on is text in a published, versioned format, so a stranger
verifies it with any implementation of the specs (Go's ``golang.org/x/mod/sumdb/note`` included,
checked in CI) and never with ours:

- c2sp.org/signed-note@v1: text ending in a newline, a blank line, then lines
  ``— <key name> base64(key ID || signature)``; key ID = SHA-256(name || 0x0A || type || key)[:4];
  Ed25519 is type 0x01; verifier keys are ``name+hex(key ID)+base64(type || key)``.
- c2sp.org/tlog-checkpoint: origin, tree size, base64 root hash (RFC 6962), one per line.
- c2sp.org/tlog-cosignature@v1: type 0x04, signature = key ID || u64 timestamp || Ed25519 over
  ``"cosignature/v1\\ntime <t>\\n" || checkpoint text``.
- c2sp.org/tlog-proof@v1: the entry's index, its inclusion proof and the checkpoint it is in.

Parsing is strict and bounded: a note is at most :data:`MAX_NOTE` bytes and holds at most
:data:`MAX_SIGNATURES` signature lines, so a hostile file costs little to refuse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.log.merkle import EMPTY_ROOT, HASH_SIZE

__all__ = [
    "COSIGNATURE_TYPE",
    "ED25519_TYPE",
    "MAX_NOTE",
    "MAX_SIGNATURES",
    "PROOF_HEADER",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "OpenedNote",
    "Signer",
    "TlogProof",
    "Verifier",
    "cosign",
    "key_id",
    "open_note",
    "parse_signatures",
    "sign_note",
]

ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
MAX_NOTE = 64 * 1024
# The spec asks verifiers to accept at least 16 signatures: the log's own, a handful of witnesses
# and room for a key rotation. Beyond that a note is refused, not scanned.
MAX_SIGNATURES = 64
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_DASH = "\u2014 "
_B64 = base64.b64encode


class NoteError(ValueError):
    """A note, checkpoint or proof is malformed or not signed as required; the message says how."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64: {text[:60]!r}") from exc
    # Non-zero padding bits decode to the same bytes: refused, so that no character of a note
    # or proof can change without the check failing.
    if _B64(raw).decode() != text:
        raise NoteError(f"{what} is not in canonical base64: {text[:60]!r}")
    return raw


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"a key name must be non-empty, without spaces or '+': {name[:60]!r}")


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4], the signed-note key ID."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trusted public key under a name: what a ``vkey`` line says."""

    name: str
    sig_type: int
    public: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.sig_type not in (ED25519_TYPE, COSIGNATURE_TYPE) or len(self.public) != 32:
            raise NoteError(
                f"key {self.name}: only Ed25519 keys (type 0x01) and Ed25519 cosigner keys "
                f"(type 0x04) of 32 bytes are supported, not type 0x{self.sig_type:02x} with "
                f"{len(self.public)} bytes"
            )

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.id.hex()}+{_B64(bytes([self.sig_type]) + self.public).decode()}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        # A name holds no '+', but base64 may: split at the first two only (as Go's note does).
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError(
                f"a verifier key is name+keyid+base64key, three parts joined by '+': {vkey[:80]!r}"
            )
        name, hex_id, b64 = parts
        raw = _b64decode(b64, f"the key of {name!r}")
        if not raw:
            raise NoteError(f"the verifier key of {name!r} is empty")
        verifier = cls(name, raw[0], raw[1:])
        if hex_id != verifier.id.hex():
            raise NoteError(
                f"the verifier key of {name!r} says key ID {hex_id}, but its key has ID "
                f"{verifier.id.hex()}: the line was altered or mistyped"
            )
        return verifier

    def check(self, text: bytes, signature: bytes) -> int | None:
        """Verify ``signature`` (without the key ID) over the note text.

        Returns the cosignature timestamp for a type 0x04 key, None for a plain signature.
        Raises :class:`NoteError` when it does not verify.
        """
        key = Ed25519PublicKey.from_public_bytes(self.public)
        timestamp: int | None = None
        message = text
        if self.sig_type == COSIGNATURE_TYPE:
            if len(signature) != 8 + 64:
                raise NoteError(
                    f"the cosignature by {self.name} has {len(signature)} bytes, not 72"
                )
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp >= 1 << 63:
                raise NoteError(f"the cosignature by {self.name} has an impossible time")
            signature = signature[8:]
            message = b"cosignature/v1\ntime %d\n" % timestamp + text
        elif len(signature) != 64:
            raise NoteError(f"the signature by {self.name} has {len(signature)} bytes, not 64")
        try:
            key.verify(signature, message)
        except InvalidSignature as exc:
            raise NoteError(
                f"the signature by {self.name} (key {self.id.hex()}) does not match the text: "
                "the note was altered after it was signed, or signed by another key"
            ) from exc
        return timestamp


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key signing under a name (type 0x01 notes, type 0x04 cosignatures)."""

    name: str
    key: Ed25519PrivateKey
    sig_type: int = ED25519_TYPE

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.sig_type, _raw(self.key.public_key()))

    def sign(self, text: str, *, timestamp: int | None = None) -> str:
        """One signature line over ``text`` (the note text, newline-terminated)."""
        body = text.encode()
        verifier = self.verifier
        if self.sig_type == COSIGNATURE_TYPE:
            if timestamp is None or not 0 < timestamp < 1 << 63:
                raise NoteError("a cosignature needs a positive POSIX timestamp")
            stamp = struct.pack(">Q", timestamp)
            message = b"cosignature/v1\ntime %d\n" % timestamp + body
            raw = verifier.id + stamp + self.key.sign(message)
        else:
            raw = verifier.id + self.key.sign(body)
        return f"{_DASH}{self.name} {_B64(raw).decode()}\n"


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # without the key ID

    @property
    def line(self) -> str:
        return f"{_DASH}{self.name} {_B64(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class OpenedNote:
    text: str
    verified: tuple[Verifier, ...]
    timestamps: tuple[int | None, ...]  # per verified signature: a cosignature's time, else None
    unknown: tuple[NoteSignature, ...]  # signatures by keys the verifier was not given


def _check_text(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note must not contain control characters other than newline")


def parse_signatures(block: str) -> list[NoteSignature]:
    """Signature lines, each ``— name base64``, each ending in a newline."""
    if not block.endswith("\n"):
        raise NoteError("the last signature line does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note with {len(lines)} signatures is more than {MAX_SIGNATURES}")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(_DASH):
            raise NoteError(f"signature line {number} does not start with '— ': {line[:60]!r}")
        name, sep, b64 = line[len(_DASH) :].partition(" ")
        if not sep:
            raise NoteError(f"signature line {number} has no signature after the key name")
        _check_name(name)
        raw = _b64decode(b64, f"the signature by {name!r}")
        if len(raw) < 5:
            raise NoteError(f"the signature by {name!r} is too short to hold a key ID")
        out.append(NoteSignature(name, raw[:4], raw[4:]))
    return out


def sign_note(text: str, signers: Iterable[Signer], *, timestamp: int | None = None) -> str:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end in a newline")
    _check_text(text)
    lines = "".join(s.sign(text, timestamp=timestamp) for s in signers)
    if not lines:
        raise NoteError("a note needs at least one signature")
    return f"{text}\n{lines}"


def open_note(note: str, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Split and verify a signed note; at least one known key must have signed it.

    As the spec requires: signatures by unknown keys are ignored (kept in ``unknown`` so that a
    bundle can carry cosignatures forward); a signature by a known key that fails to verify
    rejects the whole note; with no verified signature the note is rejected.
    """
    if len(note.encode()) > MAX_NOTE:
        raise NoteError(f"a note of {len(note.encode())} bytes is more than {MAX_NOTE}")
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note needs its text, a blank line, then signature lines")
    text, block = note[: split + 1], note[split + 2 :]
    known = {(v.name, v.id): v for v in verifiers}
    verified: list[Verifier] = []
    stamps: list[int | None] = []
    unknown: list[NoteSignature] = []
    body = text.encode()
    for sig in parse_signatures(block):
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unknown.append(sig)
            continue
        stamps.append(verifier.check(body, sig.signature))
        verified.append(verifier)
    if not verified:
        names = ", ".join(sorted({v.name for v in verifiers})) or "none"
        raise NoteError(f"the note is not signed by any trusted key (trusted: {names})")
    return OpenedNote(text, tuple(verified), tuple(stamps), tuple(unknown))


def cosign(signer: Signer, checkpoint_text: str, timestamp: int) -> str:
    """A witness's cosignature line (tlog-cosignature@v1) over a checkpoint's text."""
    if signer.sig_type != COSIGNATURE_TYPE:
        raise NoteError("a cosigner key has signature type 0x04")
    return signer.sign(checkpoint_text, timestamp=timestamp)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The first three lines of a c2sp.org/tlog-checkpoint; Einblick writes no extension lines."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            raise NoteError(f"a checkpoint origin is one printable line: {self.origin[:60]!r}")
        if not 0 <= self.size < 1 << 63:
            raise NoteError(f"a checkpoint tree size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise NoteError(f"a checkpoint root hash has {len(self.root)} bytes, not 32")
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise NoteError("an empty tree's root hash is SHA-256 of nothing")

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_B64(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError(
                "a checkpoint is at least three non-empty lines (origin, size, root hash), "
                "each ending in a newline"
            )
        if len(lines) > 4:
            raise NoteError("Einblick checkpoints carry no extension lines; this one has some")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError(f"a checkpoint tree size is a decimal number: {size_text[:30]!r}")
        return cls(origin, int(size_text), _b64decode(root_text, "the checkpoint root hash"))


@dataclass(frozen=True, slots=True)
class TlogProof:
    """c2sp.org/tlog-proof@v1: one entry's index, inclusion proof and signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    @property
    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_B64(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines += [_B64(h).decode() for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint_note

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        if len(text.encode()) > MAX_NOTE * 2:
            raise NoteError("a tlog proof this large is not one")
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise NoteError("a tlog proof needs a blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise NoteError(f"the first line of a tlog proof is {PROOF_HEADER!r}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _b64decode(rest[0][6:], "the proof's extra data")
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise NoteError("a tlog proof names its entry with a line 'index N'")
        index_text = rest[0][6:]
        if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")):
            raise NoteError(f"the proof's index is a decimal number: {index_text[:30]!r}")
        hashes = tuple(_b64decode(h, "an inclusion proof hash") for h in rest[1:])
        if any(len(h) != HASH_SIZE for h in hashes):
            raise NoteError("every inclusion proof line is one base64 SHA-256 hash")
        return cls(int(index_text), hashes, note, extra)
