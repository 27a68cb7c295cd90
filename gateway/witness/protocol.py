"""c2sp.org/tlog-witness add-checkpoint, sans I/O: the request's bytes, the witness's verdict.

Both sides use this module: the witness server parses a request and decides with
:func:`judge`, the gateway's submitter builds a request with :func:`request_body` and reads a
409 answer with :func:`parse_size`. The verdict carries the HTTP status the spec fixes for each
case, checked in the spec's order:

    400  the body is malformed, or the old size is above the checkpoint's size
    404  the checkpoint's origin is not a log this witness follows
    403  no signature by a key trusted for that origin, or one such signature fails
    409  the old size is not the size this witness last cosigned (body: that size)
    422  a size-0 checkpoint whose root is not the empty tree's; a proof from size 0;
         the same size with another root; a consistency proof that does not verify

Every byte of a request comes from whoever can reach the witness: the body is bounded
(:data:`MAX_BODY`), at most 63 proof lines are read, and nothing is hashed before the
checkpoint's signature is known to come from a trusted key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.log.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency
from gateway.log.note import MAX_NOTE, Checkpoint, NoteError, Verifier, open_note, parse_signatures

__all__ = [
    "MAX_BODY",
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "Latest",
    "ProtocolError",
    "Verdict",
    "judge",
    "parse_request",
    "parse_size",
    "request_body",
]

MAX_PROOF_LINES = 63
# "old N\n", 63 base64 hashes of 45 bytes each, a blank line and the largest note we accept.
MAX_BODY = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class ProtocolError(ValueError):
    """A request or answer does not follow c2sp.org/tlog-witness; the message says where."""


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """One add-checkpoint request: ``old`` size, the consistency proof, the signed note."""

    old: int
    proof: tuple[bytes, ...]
    note: str  # the checkpoint text, a blank line, its signature lines

    @property
    def text(self) -> str:
        """The checkpoint's text (everything the signatures cover), newline-terminated."""
        return self.note[: self.note.rfind("\n\n") + 1]


@dataclass(frozen=True, slots=True)
class Latest:
    """What a witness holds for one origin: the size and root it last cosigned."""

    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class Verdict:
    """The witness's answer before any I/O: cosign (200) or refuse with a status and reason.

    ``evidence`` marks refusals of a checkpoint the log itself signed that contradicts what the
    witness holds: proof of a forked or rewritten log, to be kept (the spec allows logging it).
    """

    status: int
    reason: str
    checkpoint: Checkpoint | None = None
    latest_size: int | None = None  # for 409
    evidence: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (text != "0" and text.startswith("0")):
        raise ProtocolError(f"{what} is a decimal number without leading zeroes: {text[:30]!r}")
    if len(text) > 19:
        raise ProtocolError(f"{what} {text[:30]} is larger than any tree size")
    return int(text)


def _hash(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"{what} is not base64: {text[:60]!r}") from exc
    if len(raw) != HASH_SIZE:
        raise ProtocolError(f"{what} has {len(raw)} bytes, not {HASH_SIZE}")
    return raw


def parse_request(body: bytes) -> AddCheckpoint:
    """The request body: ``old N``, proof lines, a blank line, then the signed checkpoint."""
    if len(body) > MAX_BODY:
        raise ProtocolError(f"a request of {len(body)} bytes is more than {MAX_BODY}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"the request is not UTF-8 (byte {exc.start})") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ProtocolError("the request needs a blank line between the proof and the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise ProtocolError(f"the first line is 'old N', found {lines[0][:40]!r}")
    old = _decimal(lines[0][4:], "the old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ProtocolError(f"{len(lines) - 1} proof lines; a client sends at most 63")
    proof = tuple(_hash(line, f"proof line {n}") for n, line in enumerate(lines[1:], 1))
    return AddCheckpoint(old, proof, note)


def request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def parse_size(body: bytes) -> int:
    """A 409 answer's body: the size the witness last cosigned, then a newline."""
    text = body.decode("ascii", errors="replace")
    if not text.endswith("\n") or "\n" in text[:-1]:
        raise ProtocolError(f"a text/x.tlog.size body is one line: {text[:40]!r}")
    return _decimal(text[:-1], "the witness's size")


def _checkpoint(note: str) -> tuple[Checkpoint | None, str]:
    """The checkpoint's first three lines, structurally; ``None`` and why for a size-0 tree
    with another root (a 422, not a 400, so it is told apart here)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise ProtocolError("the checkpoint needs its text, a blank line, then signature lines")
    try:
        parse_signatures(note[split + 2 :])
    except NoteError as exc:
        raise ProtocolError(f"the checkpoint's signatures: {exc}") from exc
    lines = note[: split + 1].split("\n")
    # Extension lines after the third are allowed and cosigned with the rest (tlog-cosignature:
    # the whole note body); what a witness vouches for is the first three.
    if len(lines) < 4 or any(not line for line in lines[:-1]):
        raise ProtocolError("a checkpoint is at least three lines: origin, size, root hash")
    size = _decimal(lines[1], "the checkpoint's tree size")
    root = _hash(lines[2], "the checkpoint's root hash")
    if size == 0 and root != EMPTY_ROOT:
        return None, "a checkpoint of size 0 must carry the empty tree's root hash"
    try:
        return Checkpoint(lines[0], size, root), ""
    except NoteError as exc:
        raise ProtocolError(str(exc)) from exc


def judge(
    request: AddCheckpoint,
    trusted: Mapping[str, Sequence[Verifier]],
    latest: Latest | None,
) -> Verdict:
    """Decide one request against the logs followed (origin → keys) and what is held for the
    request's origin (``None``: never cosigned). Nothing here writes: the caller persists a 200
    verdict's checkpoint atomically with reading ``latest``."""
    origin = request.note.split("\n", 1)[0]
    keys = trusted.get(origin)
    if keys is None:
        return Verdict(404, f"this witness does not follow the log {origin[:100]!r}")
    try:
        checkpoint, wrong_root = _checkpoint(request.note)
    except ProtocolError as exc:
        return Verdict(400, str(exc))
    try:
        open_note(request.note, keys)
    except NoteError as exc:
        return Verdict(403, f"{origin}: {exc}")
    size = checkpoint.size if checkpoint is not None else 0
    if request.old > size:
        return Verdict(400, f"old size {request.old} is above the checkpoint's size {size}")
    held = latest.size if latest is not None else 0
    if request.old != held:
        return Verdict(
            409, f"old size {request.old}, but the last cosigned size is {held}", latest_size=held
        )
    if checkpoint is None:
        return Verdict(422, wrong_root, evidence=True)
    if request.old == 0:
        if request.proof:
            return Verdict(422, "a proof from size 0 must be empty", checkpoint, evidence=True)
        return Verdict(200, "cosigned", checkpoint)
    assert latest is not None
    try:
        verify_consistency(request.old, size, latest.root, checkpoint.root, request.proof)
    except ProofError as exc:
        return Verdict(
            422,
            f"{origin}: size {size} is not an extension of the cosigned size {held}: {exc}",
            checkpoint,
            evidence=True,
        )
    return Verdict(200, "cosigned", checkpoint)
