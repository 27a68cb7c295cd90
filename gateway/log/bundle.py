"""A customer's export: one self-contained file that verifies offline with the public key alone.

Format ``einblick-bundle/v1``: JSON lines, each line sorted-key compact JSON (the verifier
re-serialises every line and refuses any that is not byte-identical, so no byte of the file is
outside the proof: whitespace, escapes, hex case, base64 padding all count). In order:

    {"t":"header","format":"einblick-bundle/v1","origin":…,"customer":…}
    {"t":"key","public":hex,"added_at":µs,"prev":hex|null,"sig_old":hex|null,"sig_new":hex|null}
    {"t":"anchor","size":n,"head":hex,"at":µs,"key":hex,"sig":hex}          (optional)
    {"t":"text","digest":hex,"text":"…"}                                    each text once
    {"t":"names","commitment":hex,"salt":hex,"doc":{…}}                     each held once
    {"t":"body","digest":hex,"body":{…}}                                    each body once
    {"t":"entry","index":i,"at":µs,"body":hex,"source":hex,"commitment":hex|null,"hash":hex,
     "topic":str|null,"content":base64|null,"salt":hex|null}                in chain order
    {"t":"checkpoint","size":n,"head":hex,"at":µs,"key":hex,"sig":hex}

Only the named customer's chain is exported, never another customer's entries. Content that was
erased is exported as nulls (the commitment stays); content still held comes with its salt, so
the customer can check it against the commitment. A version 2 body names its names document
(paths, people's names, the texts: ``gateway.log.names``) by commitment; a document still held
comes as a ``names`` line with its subject's salt, an erased one is absent, and the verifier
accepts its absence only before a signed erasure entry of its subject.

``--since``: the export starts at the newest checkpoint signed before ``since`` (the *anchor*),
so it may include up to a second of older entries. Starting exactly at ``since`` would need an
unsigned "previous hash" the verifier must take on trust; starting at a signed checkpoint makes
the first exported entry's predecessor a signed fact. Without an earlier checkpoint the export
starts at the chain's start (genesis, or the compaction anchor).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import BundleError, LogError
from gateway.log.chain import (
    GATEWAY_CHAIN,
    body_digest,
    canonical_json,
    content_commitment,
    salt_for,
    text_digest,
)
from gateway.log.entry import us_from_at
from gateway.log.keys import PublicKey
from gateway.log.names import Erasures, names_commitment, names_salt
from gateway.log.verify import (
    ChainWalk,
    CheckpointRecord,
    KeyRecord,
    VerifyReport,
    trusted_keys,
)

__all__ = ["FORMAT", "export_customer", "verify_bundle"]

FORMAT = "einblick-bundle/v1"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def _checkpoint_line(kind: str, row: tuple[Any, ...]) -> dict[str, Any]:
    size, head, at, key_id, sig = row
    return {
        "t": kind,
        "size": size,
        "head": _hex(head),
        "at": at,
        "key": _hex(key_id),
        "sig": _hex(sig),
    }


def export_customer(db_path: str | Path, customer: str, since: datetime | None = None) -> bytes:
    """The bundle of ``customer``'s chain (from ``since``, anchored at a signed checkpoint)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        return _export(conn, customer, since)
    finally:
        conn.close()


def _export(conn: sqlite3.Connection, customer: str, since: datetime | None) -> bytes:
    origin = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
    if origin is None or row is None:
        raise LogError(f"export: no chain for customer {customer!r} in this log")
    chain_id = int(row[0])
    lines: list[dict[str, Any]] = [
        {"t": "header", "format": FORMAT, "origin": origin[0], "customer": customer}
    ]
    for public, added_at, prev, sig_old, sig_new in conn.execute(
        "SELECT public, added_at, prev_key_id, sig_old, sig_new FROM keys ORDER BY id"
    ):
        lines.append(
            {
                "t": "key",
                "public": _hex(public),
                "added_at": added_at,
                "prev": _hex(prev),
                "sig_old": _hex(sig_old),
                "sig_new": _hex(sig_new),
            }
        )
    cols = "size, head, at, key_id, signature"
    anchor = conn.execute(
        f"SELECT {cols} FROM anchors a JOIN checkpoints c ON c.id = a.checkpoint_id"
        " WHERE a.chain_id = ?",
        (chain_id,),
    ).fetchone()
    if since is not None:
        later = conn.execute(
            f"SELECT {cols} FROM checkpoints WHERE chain_id = ? AND at < ?"
            " ORDER BY size DESC LIMIT 1",
            (chain_id, us_from_at(since)),
        ).fetchone()
        if later is not None and (anchor is None or later[0] > anchor[0]):
            anchor = later
    start = 0 if anchor is None else int(anchor[0])
    if anchor is not None:
        lines.append(_checkpoint_line("anchor", anchor))
    entries = conn.execute(
        "SELECT e.idx, e.at, b.digest, e.source, e.commitment, e.hash, t.topic, c.payload,"
        " c.seq IS NOT NULL, e.device_id, b.doc"
        " FROM entries e JOIN bodies b ON b.id = e.body_id"
        " LEFT JOIN content c ON c.seq = e.seq LEFT JOIN topics t ON t.id = c.topic_id"
        " WHERE e.chain_id = ? AND e.idx >= ? ORDER BY e.seq",
        (chain_id, start),
    ).fetchall()
    keys = dict(
        conn.execute("SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain_id,))
    )

    def salt(device_id: int | None, index: int) -> bytes | None:
        key = keys.get(device_id or 0)
        return None if key is None else salt_for(bytes(key), customer, index)

    docs: dict[bytes, bytes] = {}
    entry_lines: list[dict[str, Any]] = []
    for (
        idx,
        at,
        digest,
        source,
        commitment,
        stored,
        topic,
        payload,
        held,
        device_id,
        doc,
    ) in entries:
        docs[bytes(digest)] = bytes(doc)
        entry_lines.append(
            {
                "t": "entry",
                "index": idx,
                "at": at,
                "body": _hex(digest),
                "source": _hex(source),
                "commitment": _hex(commitment),
                "hash": _hex(stored),
                "topic": topic if held else None,
                "content": (
                    base64.b64encode(payload).decode("ascii")
                    if held and payload is not None
                    else None
                ),
                "salt": _hex(salt(device_id, idx)) if held else None,
            }
        )
    text_digests: set[str] = set()
    commitments: set[bytes] = set()
    body_lines = []
    for digest, doc in sorted(docs.items()):
        body = orjson.loads(doc)
        if "names" in body:
            commitments.add(bytes.fromhex(body["names"]))
        else:
            text_digests.update((body["text_de"], body["text_en"]))
        body_lines.append({"t": "body", "digest": digest.hex(), "body": body})
    for commitment in sorted(commitments):
        held = conn.execute(
            "SELECT device_id, doc FROM names WHERE chain_id = ? AND commitment = ?",
            (chain_id, commitment),
        ).fetchone()
        key = None if held is None else keys.get(held[0])
        if held is not None and key is not None:
            lines.append(
                {
                    "t": "names",
                    "commitment": commitment.hex(),
                    "salt": names_salt(bytes(key)).hex(),
                    "doc": orjson.loads(held[1]),
                }
            )
    for hexdigest in sorted(text_digests):
        found = conn.execute(
            "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(hexdigest),)
        ).fetchone()
        lines.append({"t": "text", "digest": hexdigest, "text": "" if found is None else found[0]})
    lines += body_lines
    lines += entry_lines
    for cp in conn.execute(
        f"SELECT {cols} FROM checkpoints WHERE chain_id = ? AND size > ? ORDER BY size, id",
        (chain_id, start),
    ):
        lines.append(_checkpoint_line("checkpoint", cp))
    return b"".join(canonical_json(line) + b"\n" for line in lines)


# -- verification ------------------------------------------------------------------------------

_FIELDS: dict[str, frozenset[str]] = {
    "header": frozenset({"t", "format", "origin", "customer"}),
    "key": frozenset({"t", "public", "added_at", "prev", "sig_old", "sig_new"}),
    "anchor": frozenset({"t", "size", "head", "at", "key", "sig"}),
    "checkpoint": frozenset({"t", "size", "head", "at", "key", "sig"}),
    "text": frozenset({"t", "digest", "text"}),
    "names": frozenset({"t", "commitment", "salt", "doc"}),
    "body": frozenset({"t", "digest", "body"}),
    "entry": frozenset(
        {"t", "index", "at", "body", "source", "commitment", "hash", "topic", "content", "salt"}
    ),
}


class _Line:
    """Typed access to one parsed line; every accessor checks the type and canonical form."""

    def __init__(self, number: int, value: dict[str, Any]) -> None:
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


def verify_bundle(data: bytes, public_key: PublicKey) -> VerifyReport:
    """Verify a bundle offline with nothing but the bundle and the pinned public key.

    Raises ``BundleError`` when the file is malformed; returns a report whose ``first`` problem
    names the entry index otherwise.
    """
    lines = _parse(data)
    header = lines[0]
    origin, customer = header.text("origin"), header.text("customer")
    report = VerifyReport(origin, pinned=True)
    keys, texts, bodies = [], {}, {}
    named: dict[str, _Line] = {}
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

    def names(line: _Line) -> None:
        commitment, salt, doc = line.bytes_("commitment"), line.bytes_("salt"), line.value["doc"]
        if not isinstance(doc, dict):
            raise line.fail("doc: expected a JSON object")
        if names_commitment(salt, canonical_json(doc)) != commitment:
            raise line.fail(
                f"names document does not match its commitment {commitment.hex()[:16]}…"
            )
        if commitment.hex() in named:
            raise line.fail(f"a second names document {commitment.hex()[:16]}…")
        named[commitment.hex()] = line

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
            if "names" not in value and value.get(lang) not in texts:
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
        names=names,
        body=body,
        anchor=set_anchor,
        checkpoint=lambda line: checkpoints.append(line.checkpoint()),
        entry=entries.append,
    )
    for line in lines[1:]:
        kind = line.value["t"]
        if kind == "header":
            raise line.fail("a second header")
        handlers[kind](line)
    # Every byte is inside the proof: a names document no body commits to is not.
    referenced = {b["names"] for b in bodies.values() if "names" in b}
    stray = [line for commitment, line in named.items() if commitment not in referenced]
    if stray:
        raise stray[0].fail("a names document that no body in the bundle commits to")
    trusted, report.key_problems = trusted_keys(origin, keys, public_key)
    report.trusted = [k.fingerprint for k in trusted.values()]
    for k in keys:
        if PublicKey(k.public).key_id not in trusted:
            report.key_problems.append(
                f"key {PublicKey(k.public).fingerprint} in the bundle is not linked to the "
                f"pinned key {public_key.fingerprint}"
            )
    walk = ChainWalk(origin, customer, checkpoints, trusted, anchor)
    erased = Erasures()
    for line in entries:
        found = bodies.get(line.bytes_("body"))
        if found is not None and found.get("kind") == "erasure":
            erased.add(customer, found.get("subject"), line.int_("index"))
    for line in entries:
        index = line.int_("index")
        digest = line.bytes_("body")
        commitment = line.hex_("commitment", null=True)
        topic = line.str_("topic", null=True)
        content = line.b64("content")
        salt = line.hex_("salt", null=True)
        if digest not in bodies:
            walk.fail(index, "body missing from the bundle", digest.hex()[:16] + "…", "none")
        elif (
            "names" in bodies[digest]
            and bodies[digest]["names"] not in named
            and not erased.covers(customer, bodies[digest].get("device"), index)
        ):
            walk.fail(
                index,
                "names document removed without a signed erasure of its subject",
                "the names document or a later erasure entry",
                "neither",
            )
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
