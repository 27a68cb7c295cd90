"""Legacy: verification of ``einblick-bundle/v1`` exports, written by Einblick up to the hash-chain
log (migration 4). New exports are ``einblick-bundle/v3`` (``gateway.log.bundle``); a v1 file a
customer kept still verifies here, unchanged.

A customer's export: one self-contained file that verifies offline with the public key alone.

Format ``einblick-bundle/v1``: JSON lines, each line sorted-key compact JSON (the verifier
re-serialises every line and refuses any that is not byte-identical, so no byte of the file is
outside the proof: whitespace, escapes, hex case, base64 padding all count). In order:

    {"t":"header","format":"einblick-bundle/v1","origin":…,"customer":…}
    {"t":"key","public":hex,"added_at":µs,"prev":hex|null,"sig_old":hex|null,"sig_new":hex|null}
    {"t":"anchor","size":n,"head":hex,"at":µs,"key":hex,"sig":hex}          (optional)
    {"t":"text","digest":hex,"text":"…"}                                    each text once
    {"t":"body","digest":hex,"body":{…}}                                    each body once
    {"t":"entry","index":i,"at":µs,"body":hex,"source":hex,"commitment":hex|null,"hash":hex,
     "topic":str|null,"content":base64|null,"salt":hex|null}                in chain order
    {"t":"checkpoint","size":n,"head":hex,"at":µs,"key":hex,"sig":hex}

Only the named customer's chain is exported, never another customer's entries. Content that was
erased is exported as nulls (the commitment stays); content still held comes with its salt, so
the customer can check it against the commitment.

``--since``: the export starts at the newest checkpoint signed before ``since`` (the *anchor*),
so it may include up to a second of older entries. Starting exactly at ``since`` would need an
unsigned "previous hash" the verifier must take on trust; starting at a signed checkpoint makes
the first exported entry's predecessor a signed fact. Without an earlier checkpoint the export
starts at the chain's start (genesis, or the compaction anchor).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson

from gateway.errors import BundleError
from gateway.log.chain import (
    GATEWAY_CHAIN,
    body_digest,
    canonical_json,
    content_commitment,
    text_digest,
)
from gateway.log.keys import PublicKey
from gateway.log.legacy import ChainWalk, CheckpointRecord
from gateway.log.legacy_keys import KeyRecord, trusted_keys
from gateway.log.reports import VerifyReport

__all__ = ["FORMAT", "verify_bundle_v1"]

FORMAT = "einblick-bundle/v1"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


# -- verification ------------------------------------------------------------------------------

_FIELDS: dict[str, frozenset[str]] = {
    "header": frozenset({"t", "format", "origin", "customer"}),
    "key": frozenset({"t", "public", "added_at", "prev", "sig_old", "sig_new"}),
    "anchor": frozenset({"t", "size", "head", "at", "key", "sig"}),
    "checkpoint": frozenset({"t", "size", "head", "at", "key", "sig"}),
    "text": frozenset({"t", "digest", "text"}),
    "body": frozenset({"t", "digest", "body"}),
    "entry": frozenset(
        {"t", "index", "at", "body", "source", "commitment", "hash", "topic", "content", "salt"}
    ),
}


class _Line:
    """Typed access to one parsed line; every accessor checks the type and canonical form."""

    def __init__(self, number: int, value: dict[str, object]) -> None:
        self.number = number
        self.value = value

    def fail(self, message: str) -> BundleError:
        return BundleError(self.number, message)

    def str_(self, key: str, *, null: bool = False) -> str | None:
        found = self.value[key]
        if found is None and null:
            return None
        if not isinstance(found, str):
            raise self.fail(f"{key}: expected a string, found {type(found).__name__}")
        return found

    def text(self, key: str) -> str:
        found = self.str_(key)
        assert found is not None
        return found

    def int_(self, key: str) -> int:
        found = self.value[key]
        if not isinstance(found, int) or isinstance(found, bool) or found < 0:
            raise self.fail(f"{key}: expected a non-negative integer, found {found!r}")
        return found

    def hex_(self, key: str, size: int | None = 32, *, null: bool = False) -> bytes | None:
        found = self.str_(key, null=null)
        if found is None:
            return None
        try:
            raw = bytes.fromhex(found)
        except ValueError as exc:
            raise self.fail(f"{key}: expected lower-case hex, found {found[:20]!r}") from exc
        if raw.hex() != found or (size is not None and len(raw) != size):
            raise self.fail(f"{key}: expected {size} bytes in lower-case hex, found {found[:20]!r}")
        return raw

    def bytes_(self, key: str, size: int | None = 32) -> bytes:
        found = self.hex_(key, size)
        assert found is not None
        return found

    def b64(self, key: str) -> bytes | None:
        found = self.str_(key, null=True)
        if found is None:
            return None
        try:
            raw = base64.b64decode(found, validate=True)
        except ValueError as exc:
            raise self.fail(f"{key}: expected base64") from exc
        if base64.b64encode(raw).decode("ascii") != found:
            raise self.fail(f"{key}: base64 not in canonical form")
        return raw

    def checkpoint(self) -> CheckpointRecord:
        return CheckpointRecord(
            self.int_("size"),
            self.bytes_("head"),
            self.int_("at"),
            self.bytes_("key"),
            self.bytes_("sig", 64),
        )


def _parse(data: bytes) -> list[_Line]:
    if not data.endswith(b"\n"):
        raise BundleError(0, "expected the bundle to end with a newline (truncated?)")
    lines = []
    for number, raw in enumerate(data[:-1].split(b"\n"), start=1):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BundleError(number, f"not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise BundleError(number, "expected a JSON object")
        if canonical_json(value) != raw:
            raise BundleError(number, "not in canonical form (sorted keys, compact, no escapes)")
        fields = _FIELDS.get(value.get("t"))  # type: ignore[arg-type]
        if fields is None:
            raise BundleError(number, f"unknown line type {value.get('t')!r}")
        if set(value) != fields:
            raise BundleError(number, f"fields: expected {sorted(fields)}, found {sorted(value)}")
        lines.append(_Line(number, value))
    if not lines or lines[0].value["t"] != "header":
        raise BundleError(1, "expected a header line first")
    if lines[0].value["format"] != FORMAT:
        raise BundleError(1, f"format: expected {FORMAT}, found {lines[0].value['format']!r}")
    return lines


def verify_bundle_v1(data: bytes, public_key: PublicKey) -> VerifyReport:
    """Verify a bundle offline with nothing but the bundle and the pinned public key.

    Raises ``BundleError`` when the file is malformed; returns a report whose ``first`` problem
    names the entry index otherwise.
    """
    lines = _parse(data)
    header = lines[0]
    origin, customer = header.text("origin"), header.text("customer")
    report = VerifyReport(origin, pinned=True)
    keys, texts, bodies = [], {}, {}
    anchor: CheckpointRecord | None = None
    checkpoints: list[CheckpointRecord] = []
    entries: list[_Line] = []
    handlers: dict[str, Callable[[_Line], None]] = {}

    def key(line: _Line) -> None:
        keys.append(
            KeyRecord(
                line.bytes_("public"),
                line.int_("added_at"),
                line.hex_("prev", null=True),
                line.hex_("sig_old", 64, null=True),
                line.hex_("sig_new", 64, null=True),
            )
        )

    def text(line: _Line) -> None:
        digest = line.bytes_("digest")
        if text_digest(line.text("text")) != digest:
            raise line.fail(f"text does not match its digest {digest.hex()[:16]}…")
        texts[digest.hex()] = True

    def body(line: _Line) -> None:
        digest = line.bytes_("digest")
        value = line.value["body"]
        if not isinstance(value, dict):
            raise line.fail("body: expected a JSON object")
        if body_digest(canonical_json(value)) != digest:
            raise line.fail(f"body does not match its digest {digest.hex()[:16]}…")
        if (value.get("customer") or GATEWAY_CHAIN) != customer:
            raise line.fail(
                f"body customer: expected {customer!r}, found {value.get('customer')!r}"
            )
        for lang in ("text_de", "text_en"):
            if value.get(lang) not in texts:
                raise line.fail(f"{lang}: the text it names is not in the bundle")
        bodies[digest] = value

    def set_anchor(line: _Line) -> None:
        nonlocal anchor
        if anchor is not None:
            raise line.fail("a second anchor")
        anchor = line.checkpoint()

    handlers.update(
        key=key,
        text=text,
        body=body,
        anchor=set_anchor,
        checkpoint=lambda line: checkpoints.append(line.checkpoint()),
        entry=entries.append,
    )
    for line in lines[1:]:
        kind = line.text("t")  # a known line type (checked when the line was read)
        if kind == "header":
            raise line.fail("a second header")
        handlers[kind](line)
    trusted, report.key_problems = trusted_keys(origin, keys, public_key)
    report.trusted = [k.fingerprint for k in trusted.values()]
    for k in keys:
        if PublicKey(k.public).key_id not in trusted:
            report.key_problems.append(
                f"key {PublicKey(k.public).fingerprint} in the bundle is not linked to the "
                f"pinned key {public_key.fingerprint}"
            )
    walk = ChainWalk(origin, customer, checkpoints, trusted, anchor)
    for line in entries:
        index = line.int_("index")
        digest = line.bytes_("body")
        commitment = line.hex_("commitment", null=True)
        topic = line.str_("topic", null=True)
        content = line.b64("content")
        salt = line.hex_("salt", null=True)
        if digest not in bodies:
            walk.fail(index, "body missing from the bundle", digest.hex()[:16] + "…", "none")
        elif salt is not None:
            if commitment is None or content_commitment(salt, topic, content) != commitment:
                walk.fail(index, "content does not match its commitment", "a match", "a mismatch")
        elif topic is not None or content is not None:
            walk.fail(index, "content without its salt", "salt", "none")
        walk.step(
            index,
            line.int_("at"),
            digest,
            line.bytes_("source"),
            commitment,
            line.bytes_("hash"),
        )
    chain = walk.finish()
    if chain.problem is None and chain.size > chain.start and chain.signed == chain.start:
        walk.fail(chain.start, "no signed checkpoint covers any entry", "a checkpoint", "none")
    if chain.problem is None and not entries and not checkpoints and anchor is None:
        report.key_problems.append("the bundle holds no entries and no checkpoints: nothing proven")
    report.chains = [chain]
    return report
