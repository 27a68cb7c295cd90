"""A customer's export, ``einblick-bundle/v2``: their tree, checkable by a stranger offline.

JSON lines, each line in RFC 8785 form (the verifier re-serialises every line and refuses one
that is not byte-identical, so no byte of the file is outside the check). In order:

    {"t":"header","format":"einblick-bundle/v2","origin":"<box>/<customer>","customer":…,
     "key":hex(first public key),"start":n,"start_hashes":[hex,…]}
    {"t":"text","digest":hex,"text":"…"}                      each explanation text once
    {"t":"body","digest":hex,"body":"<the body's exact RFC 8785 bytes, as a string>"}
    {"t":"names","commitment":hex,"salt":hex,"doc":"<the names document's exact bytes>"}
    {"t":"entries","first":i,"data":base64(k × (114 entry bytes || 32-byte leaf hash))}
    {"t":"content","data":base64(k × (u64 index || u32 n || n bytes: salt || topic || content))}
    {"t":"checkpoint","note":"<C2SP signed note, with any witness cosignature lines>"}

A version 2 body commits to its names document (the paths, people's names and texts a device
or a person chose: ``gateway.log.names``); a document still held comes as a ``names`` line with
its subject's salt, an erased one is absent, and the checker accepts its absence only before a
signed erasure entry of its subject.

``start`` leaves were dropped by retention's compaction before this export (a multiple of 256),
``start_hashes`` their compact range (RFC 6962 subtree hashes, largest first), so the roots of
the checkpoints still recompute. ``gateway/log/SPEC.md`` is the full description. A v1 file
(the hash-chain era) is checked by ``gateway.log.legacy_bundle``.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import LogError
from gateway.log.chain import content_tail, salt_for, text_digest
from gateway.log.checkpoints import cosignatures
from gateway.log.handovers import claimed_origin_at
from gateway.log.jcs import MAX_SAFE_INTEGER, canonical
from gateway.log.keys import PublicKey
from gateway.log.leaf import ENTRY_SIZE, TreeInput, entry_bytes, tree_origin
from gateway.log.names import names_salt
from gateway.log.note import ED25519_TYPE, Checkpoint, NoteError, Verifier, open_note
from gateway.log.proof import check_tree
from gateway.log.tree import TreeHashes, tree_info
from gateway.log.verdict import (
    NO_WITNESSES,
    TAMPERED,
    Kept,
    Problem,
    TreeVerdict,
    UnusableInput,
    WitnessPolicy,
)

__all__ = [
    "FORMAT",
    "Bundle",
    "export_customer",
    "parse_bundle",
    "read_kept",
    "verify_bundle",
]

FORMAT = "einblick-bundle/v2"
CHUNK = 1024  # entries (content records) per "entries" ("content") line
_CONTENT_HEAD = struct.Struct(">QI")
_RECORD = ENTRY_SIZE + 32
_FIELDS: dict[str, frozenset[str]] = {
    "header": frozenset({"t", "format", "origin", "customer", "key", "start", "start_hashes"}),
    "text": frozenset({"t", "digest", "text"}),
    "body": frozenset({"t", "digest", "body"}),
    "names": frozenset({"t", "commitment", "salt", "doc"}),
    "entries": frozenset({"t", "first", "data"}),
    "content": frozenset({"t", "data"}),
    "checkpoint": frozenset({"t", "note"}),
}


def export_customer(db_path: str | Path, customer: str) -> bytes:
    """The v2 bundle of ``customer``'s tree (call after signing, so every entry is covered)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        return _export(conn, customer)
    finally:
        conn.close()


def _export(conn: sqlite3.Connection, customer: str) -> bytes:
    origin_row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
    if origin_row is None or row is None:
        raise LogError(f"export: no log for customer {customer!r} in this database")
    chain_id = int(row[0])
    info = tree_info(conn, chain_id)
    if info is None:
        raise LogError(f"export: the log of {customer!r} has no tree (database not upgraded?)")
    first_key = conn.execute("SELECT public FROM keys WHERE key_id = ?", (info.first_key,))
    key_row = first_key.fetchone()
    if key_row is None:
        raise LogError(f"export: the key the log of {customer!r} started with is not stored")
    start = info.dropped
    lines: list[dict[str, Any]] = [
        {
            "t": "header",
            "format": FORMAT,
            "origin": tree_origin(str(origin_row[0]), customer),
            "customer": customer,
            "key": bytes(key_row[0]).hex(),
            "start": start,
            "start_hashes": [
                h.hex() for h in TreeHashes(conn, chain_id, info.base).compact_range(start)
            ],
        }
    ]
    rows = conn.execute(
        "SELECT e.idx, e.at, b.digest, e.source, e.commitment, e.hash, e.device_id, b.doc,"
        " c.seq IS NOT NULL, t.topic, c.payload"
        " FROM entries e JOIN bodies b ON b.id = e.body_id LEFT JOIN content c ON c.seq = e.seq"
        " LEFT JOIN topics t ON t.id = c.topic_id WHERE e.chain_id = ? AND e.idx >= ?"
        " ORDER BY e.idx",
        (chain_id, info.base + start),
    ).fetchall()
    keys = dict(
        conn.execute("SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain_id,))
    )
    docs: dict[bytes, bytes] = {}
    records: list[bytes] = []
    tails: list[bytes] = []
    for idx, at, digest, source, commitment, leaf, device_id, doc, held, topic, payload in rows:
        index = int(idx) - info.base
        docs[bytes(digest)] = bytes(doc)
        records.append(
            entry_bytes(
                index, at, bytes(digest), bytes(source), None if commitment is None else commitment
            )
            + bytes(leaf)
        )
        key = keys.get(device_id or 0)
        if held and key is not None:
            tail = content_tail(
                salt_for(bytes(key), customer, int(idx)),
                topic,
                None if payload is None else bytes(payload),
            )
            tails.append(_CONTENT_HEAD.pack(index, len(tail)) + tail)
    text_digests: set[str] = set()
    body_lines = []
    commitments: set[bytes] = set()
    for digest, doc in sorted(docs.items()):
        value = orjson.loads(doc)
        text_digests.update(str(value[k]) for k in ("text_de", "text_en") if value.get(k))
        if value.get("names"):
            commitments.add(bytes.fromhex(str(value["names"])))
        body_lines.append({"t": "body", "digest": digest.hex(), "body": doc.decode("utf-8")})
    body_lines += _names_lines(conn, chain_id, commitments, keys)
    for hexdigest in sorted(text_digests):
        found = conn.execute(
            "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(hexdigest),)
        ).fetchone()
        lines.append({"t": "text", "digest": hexdigest, "text": "" if found is None else found[0]})
    lines += body_lines
    for first in range(0, len(records), CHUNK):
        chunk = b"".join(records[first : first + CHUNK])
        lines.append(
            {"t": "entries", "first": start + first, "data": base64.b64encode(chunk).decode()}
        )
    for first in range(0, len(tails), CHUNK):
        chunk = b"".join(tails[first : first + CHUNK])
        lines.append({"t": "content", "data": base64.b64encode(chunk).decode()})
    cosigned = cosignatures(conn)
    for checkpoint_id, note in conn.execute(
        "SELECT id, note FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL AND size > ?"
        " ORDER BY size, id",
        (chain_id, info.base + start),
    ):
        lines.append({"t": "checkpoint", "note": str(note) + cosigned.get(int(checkpoint_id), "")})
    return b"".join(canonical(line) + b"\n" for line in lines)


def _names_lines(
    conn: sqlite3.Connection, chain_id: int, commitments: set[bytes], keys: dict[Any, Any]
) -> list[dict[str, Any]]:
    """The names documents still held, each with its subject's salt (erased ones are absent)."""
    if not commitments:
        return []
    lines = []
    for device_id, commitment, doc in conn.execute(
        "SELECT device_id, commitment, doc FROM names WHERE chain_id = ? ORDER BY commitment",
        (chain_id,),
    ):
        key = keys.get(device_id)
        if bytes(commitment) in commitments and key is not None:
            lines.append(
                {
                    "t": "names",
                    "commitment": bytes(commitment).hex(),
                    "salt": names_salt(bytes(key)).hex(),
                    "doc": bytes(doc).decode("utf-8"),
                }
            )
    return lines


# -- reading -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Bundle:
    tree: TreeInput
    texts_bad: dict[str, str]  # text digest -> why it does not hold (changed, missing)


def _fail(number: int, message: str) -> UnusableInput:
    return UnusableInput(f"bundle line {number}: {message}")


def _str(line: dict[str, Any], key: str, number: int, *, null: bool = False) -> str | None:
    value = line[key]
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise _fail(number, f"{key}: expected a string, found {type(value).__name__}")
    return value


def _int(line: dict[str, Any], key: str, number: int) -> int:
    value = line[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise _fail(number, f"{key}: expected a non-negative integer, found {value!r}")
    return value


def _hex(line: dict[str, Any], key: str, number: int, size: int | None = 32) -> bytes:
    text = _str(line, key, number) or ""
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise _fail(number, f"{key}: expected lower-case hex") from exc
    if raw.hex() != text or (size is not None and len(raw) != size):
        raise _fail(number, f"{key}: expected {size} bytes in lower-case hex")
    return raw


def _b64(text: str | bytes, number: int, key: str) -> bytes:
    try:  # strict: only the alphabet, padding only at the end (checked in C, no regex)
        ascii_text = text if isinstance(text, bytes) else text.encode("ascii")
        raw = binascii.a2b_base64(ascii_text, strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise _fail(number, f"{key}: expected base64") from exc
    # Only the last group of four characters can carry padding bits that decoding ignores;
    # re-encoding that group (not the whole chunk) proves the text canonical.
    if raw:
        tail = len(raw) % 3 or 3
        canonical_text = base64.b64encode(raw[-tail:]) == ascii_text[-4:]
    else:
        canonical_text = not ascii_text
    if not canonical_text:
        raise _fail(number, f"{key}: base64 not in canonical form")
    return raw


_ENTRIES_HEAD = b'{"data":"'


def _bulk_line(raw: bytes) -> tuple[str, int | None, bytes] | None:
    """An ``entries`` or ``content`` line in exactly its RFC 8785 form, split without parsing.

    Their canonical form is fixed: ``{"data":"<base64>","first":<n>,"t":"entries"}`` and
    ``{"data":"<base64>","t":"content"}``; base64 needs no escapes, so a line equal to that
    form byte for byte is canonical. Anything else (None) goes through the general parser,
    which refuses it or names what is wrong.
    """
    if not raw.startswith(_ENTRIES_HEAD):
        return None
    end = raw.find(b'"', len(_ENTRIES_HEAD))
    if end < 0:
        return None
    data = raw[len(_ENTRIES_HEAD) : end]
    rest = raw[end:]
    if rest == b'","t":"content"}':
        kind, first = "content", None
    elif rest.startswith(b'","first":') and rest.endswith(b',"t":"entries"}'):
        digits = rest[len(b'","first":') : -len(b',"t":"entries"}')]
        if not digits.isdigit() or (digits != b"0" and digits.startswith(b"0")):
            return None
        kind, first = "entries", int(digits)
        if first > MAX_SAFE_INTEGER:
            return None
    else:
        return None
    if not data.isascii():
        return None  # a2b_base64(strict_mode=True) checks every character's alphabet after this
    return kind, first, data  # bytes: no decode and re-encode of megabytes of base64


def _content_records(chunk: bytes, number: int, into: dict[int, bytes]) -> None:
    """u64 index || u32 length || that many bytes (salt, topic part, content part), repeated."""
    pos, end = 0, len(chunk)
    head = _CONTENT_HEAD
    while pos < end:
        if end - pos < head.size:
            raise _fail(number, "content: a record is cut off")
        index, size = head.unpack_from(chunk, pos)
        pos += head.size
        if size < 34 or pos + size > end:
            raise _fail(number, f"content: record of entry {index} has an impossible length")
        if index in into:
            raise _fail(number, f"content: entry {index} is given twice")
        into[index] = chunk[pos : pos + size]
        pos += size


def parse_bundle(data: bytes) -> Bundle:
    """Parse a v2 bundle strictly; raises :class:`UnusableInput` for a malformed file."""
    if not data.endswith(b"\n"):
        raise UnusableInput("bundle: expected the file to end with a newline (cut off?)")
    header: dict[str, Any] | None = None
    texts: dict[str, str] = {}
    bodies: dict[bytes, bytes] = {}
    chunks: list[bytes] = []
    next_first: int | None = None
    content: dict[int, bytes] = {}
    names: dict[bytes, tuple[bytes | None, bytes]] = {}
    notes: list[str] = []
    for number, raw in enumerate(data[:-1].split(b"\n"), start=1):
        bulk = _bulk_line(raw) if number > 1 else None
        if bulk is not None:  # an "entries" or "content" line, read without a JSON parser
            bulk_kind, bulk_first, encoded = bulk
            decoded = _b64(encoded, number, "data")
            if bulk_kind == "content":
                _content_records(decoded, number, content)
                continue
            if bulk_first is None or bulk_first != next_first:
                raise _fail(number, f"entries: expected first {next_first}, found {bulk_first}")
            if len(decoded) % _RECORD:
                raise _fail(number, f"entries: not a whole number of {_RECORD}-byte records")
            chunks.append(decoded)
            next_first = bulk_first + len(decoded) // _RECORD
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _fail(number, f"not JSON: {exc}") from exc
        if not isinstance(line, dict):
            raise _fail(number, "expected a JSON object")
        kind = line.get("t")
        fields = _FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None:
            raise _fail(number, f"unknown line type {kind!r}")
        if set(line) != fields:
            raise _fail(number, f"fields: expected {sorted(fields)}, found {sorted(line)}")
        # For these lines orjson's sorted output is their RFC 8785 form: member names are
        # fixed ASCII, numbers are integers (bounded in _int) and orjson escapes strings
        # exactly as RFC 8785 §3.2.2.2 does (tested); the full serializer is 50x slower.
        if orjson.dumps(line, option=orjson.OPT_SORT_KEYS) != raw:
            raise _fail(number, "not in RFC 8785 canonical form")
        if number == 1:
            if kind != "header":
                raise _fail(1, "expected the header first")
            if line["format"] != FORMAT:
                raise _fail(1, f"format: expected {FORMAT}, found {line['format']!r}")
            header = line
            next_first = _int(line, "start", 1)
            continue
        if kind == "header":
            raise _fail(number, "a second header")
        if kind == "text":
            text = _str(line, "text", number) or ""
            digest = _hex(line, "digest", number)
            texts[digest.hex()] = "" if text_digest(text) == digest else "changed"
        elif kind == "body":
            bodies[_hex(line, "digest", number)] = (_str(line, "body", number) or "").encode()
        elif kind == "names":
            commitment = _hex(line, "commitment", number)
            if commitment in names:
                raise _fail(number, f"a second names document {commitment.hex()[:16]}…")
            names[commitment] = (
                _hex(line, "salt", number),
                (_str(line, "doc", number) or "").encode(),
            )
        elif kind == "entries":
            first = _int(line, "first", number)
            if first != next_first:
                raise _fail(number, f"entries: expected first {next_first}, found {first}")
            chunk = _b64(_str(line, "data", number) or "", number, "data")
            if len(chunk) % _RECORD:
                raise _fail(number, f"entries: not a whole number of {_RECORD}-byte records")
            chunks.append(chunk)
            next_first = first + len(chunk) // _RECORD
        elif kind == "content":
            chunk = _b64(_str(line, "data", number) or "", number, "data")
            _content_records(chunk, number, content)
        else:
            notes.append(_str(line, "note", number) or "")
    if header is None:
        raise UnusableInput("bundle: empty")
    # Each record is 114 entry bytes then the 32-byte leaf listed for them: two strided slices
    # (no tuple per record).
    records = b"".join(chunks)
    entries = b"".join([records[i : i + ENTRY_SIZE] for i in range(0, len(records), _RECORD)])
    leaves = [records[i : i + 32] for i in range(ENTRY_SIZE, len(records), _RECORD)]
    start_hashes = header["start_hashes"]
    if not isinstance(start_hashes, list) or not all(isinstance(h, str) for h in start_hashes):
        raise _fail(1, "start_hashes: expected a list of hex strings")
    tree = TreeInput(
        origin=_str(header, "origin", 1) or "",
        customer=_str(header, "customer", 1) or "",
        first_key=_hex(header, "key", 1),
        entries=entries,
        leaves=leaves,
        bodies=bodies,
        checkpoints=notes,
        start=_int(header, "start", 1),
        start_hashes=[bytes.fromhex(h) for h in start_hashes],
        content=content,
        names=names,
    )
    if len(tree.start_hashes) != tree.start.bit_count():
        raise _fail(1, f"start_hashes: {tree.start} dropped leaves need {tree.start.bit_count()}")
    # Which bodies name a text that is missing or changed (reported at their first entry).
    bad: dict[str, str] = {}
    for raw_body in bodies.values():
        try:
            doc = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            continue  # the proof check names it
        if not isinstance(doc, dict):
            continue
        for lang in ("text_de", "text_en"):
            ref = doc.get(lang)
            if isinstance(ref, str) and texts.get(ref, "missing"):
                bad[ref] = texts.get(ref, "missing")
    return Bundle(tree, bad)


def _text_problem(bundle: Bundle) -> Problem | None:
    if not bundle.texts_bad:
        return None
    tree = bundle.tree
    for pos in range(len(tree.entries) // ENTRY_SIZE):
        body = tree.entries[pos * ENTRY_SIZE + 17 : pos * ENTRY_SIZE + 49]
        raw = tree.bodies.get(body)
        if raw is None:
            continue
        doc = orjson.loads(raw)
        for lang in ("text_de", "text_en"):
            why = bundle.texts_bad.get(str(doc.get(lang)))
            if why:
                return Problem(
                    TAMPERED,
                    tree.start + pos,
                    f"explanation text ({lang}) {why}",
                    str(doc.get(lang))[:16] + "…",
                    why,
                )
    return None


def read_kept(data: bytes, pinned: PublicKey, tree: TreeInput) -> Kept:
    """What the customer kept (``--since``): a checkpoint note file or an earlier v2 bundle."""
    text = data.decode("utf-8", "replace")
    if text.startswith("{"):
        old = verify_bundle(data, pinned)
        if old.problem is not None:
            raise UnusableInput(
                f"--since: the earlier bundle does not verify itself: {old.problem}"
            )
        bundle = parse_bundle(data)
        return Kept(old.covered, old.root, bundle.tree.leaves[: old.covered - bundle.tree.start])
    try:
        cp = Checkpoint.parse(text[: text.find("\n\n") + 1])
        origin = claimed_origin_at(tree, cp.size)  # kept before a handover: the old origin
        if cp.origin != origin:
            raise UnusableInput(f"--since: the kept checkpoint is of {cp.origin}, not {origin}")
        open_note(text, [Verifier(origin, ED25519_TYPE, pinned.raw)])
    except NoteError as exc:
        raise UnusableInput(
            f"--since: not a checkpoint signed by the key you trust: {exc}"
        ) from exc
    return Kept(cp.size, cp.root)


def verify_bundle(
    data: bytes,
    pinned: PublicKey,
    *,
    witnesses: WitnessPolicy = NO_WITNESSES,
    since: bytes | None = None,
) -> TreeVerdict:
    """Verify a v2 bundle with the key the customer trusts (and optionally what they kept)."""
    bundle = parse_bundle(data)
    kept = None if since is None else read_kept(since, pinned, bundle.tree)
    verdict = check_tree(bundle.tree, pinned, witnesses=witnesses, since=kept)
    text = _text_problem(bundle)
    if text is not None and (verdict.problem is None or text.index < verdict.problem.index):
        verdict.problem = text
    return verdict


def tree_leaves(bundle: Bundle) -> Sequence[bytes]:
    return bundle.tree.leaves
