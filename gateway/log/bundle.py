"""A customer's export, ``einblick-bundle/v3``: their tree, checkable by a stranger offline.

JSON lines, each line in RFC 8785 form (the reader re-serialises every line and refuses one
that is not byte-identical, so no byte of the file is outside the check). In order:

    {"t":"header","format":"einblick-bundle/v3","origin":"<box>/<customer>","customer":…,
     "key":hex(first public key),"start":n,"start_hashes":[hex,…]}
    {"t":"text","digest":hex,"text":"…"}                      each explanation text once
    {"t":"body","digest":hex,"body":"<the body's exact RFC 8785 bytes, as a string>"}
    {"t":"names","commitment":hex,"salt":hex,"doc":"<the names document's exact bytes>"}
    {"t":"entries","first":i,"data":base64(k × 114 entry bytes || k × 32-byte leaf hash)}
    {"t":"content","data":base64(u32 k || k × u64 index || k × u32 n || the k records)}
    {"t":"checkpoint","note":"<C2SP signed note, with any witness cosignature lines>"}

The binary lines are laid out by column (at most 1,024 entries or content records a line), so
a verifier slices whole columns instead of walking records; ``gateway.log.bundle_lines`` reads
them (and the interleaved v2 layout). A version 2 body commits to its names document (the
paths, people's names and texts a device or a person chose: ``gateway.log.names``); a document
still held comes as a ``names`` line with its subject's salt, an erased one is absent, and the
checker accepts its absence only before a signed erasure entry of its subject.

``start`` leaves were dropped by retention's compaction before this export (a multiple of 256),
``start_hashes`` their compact range (RFC 6962 subtree hashes, largest first), so the roots of
the checkpoints still recompute. ``gateway/log/SPEC.md`` §6 is the full description. A v1 file
(the hash-chain era) is checked by ``gateway.log.legacy_bundle``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import sqlite3
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import LogError
from gateway.log.bundle_file import NotProven, Opener
from gateway.log.bundle_lines import FORMAT, Bundle, parse_bundle
from gateway.log.bundle_models import (
    BodyLine,
    CheckpointLine,
    ContentLine,
    EntriesLine,
    HeaderLine,
    JsonLine,
    NamesLine,
    TextLine,
)
from gateway.log.bundle_stream import prove_bundle
from gateway.log.chain import content_tail, salt_for
from gateway.log.checkpoints import cosignatures
from gateway.log.handovers import claimed_origin_at
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
    "CHUNK",
    "export_customer",
    "read_kept",
    "verify_bundle",
    "verify_bundle_file",
    "verify_whole_bundle",
]

CHUNK = 1024  # entries (content records) per "entries" ("content") line


def export_customer(db_path: str | Path, customer: str, *, signed_only: bool = False) -> bytes:
    """The v2 bundle of ``customer``'s tree (call after signing, so every entry is covered).
    ``signed_only``: end at the newest checkpoint, for a running gateway that goes on
    appending after it signed for the export (the entries after it go into the next bundle)."""
    conn = sqlite3.connect(Path(db_path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        # One snapshot: a running gateway goes on appending, and a bundle read across its
        # commits could hold a checkpoint without its entries, or entries no checkpoint covers.
        conn.execute("BEGIN")
        return _export(conn, customer, signed_only=signed_only)
    finally:
        conn.close()


def _export(conn: sqlite3.Connection, customer: str, *, signed_only: bool) -> bytes:
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
    lines: list[JsonLine] = [
        HeaderLine(
            t="header",
            format=FORMAT,
            origin=tree_origin(str(origin_row[0]), customer),
            customer=customer,
            key=bytes(key_row[0]),
            start=start,
            start_hashes=list(TreeHashes(conn, chain_id, info.base).compact_range(start)),
        )
    ]
    rows = conn.execute(
        "SELECT e.idx, e.at, b.digest, e.source, e.commitment, e.hash, e.device_id, b.doc,"
        " c.seq IS NOT NULL, t.topic, c.payload"
        " FROM entries e JOIN bodies b ON b.id = e.body_id LEFT JOIN content c ON c.seq = e.seq"
        " LEFT JOIN topics t ON t.id = c.topic_id WHERE e.chain_id = ? AND e.idx >= ?"
        " AND e.idx < ? ORDER BY e.idx",
        (chain_id, info.base + start, _signed_through(conn, chain_id) if signed_only else 2**62),
    ).fetchall()
    keys = dict(
        conn.execute("SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain_id,))
    )
    docs: dict[bytes, bytes] = {}
    records: list[bytes] = []
    leaves: list[bytes] = []
    tails: list[tuple[int, bytes]] = []
    for idx, at, digest, source, commitment, leaf, device_id, doc, held, topic, payload in rows:
        index = int(idx) - info.base
        docs[bytes(digest)] = bytes(doc)
        records.append(
            entry_bytes(
                index, at, bytes(digest), bytes(source), None if commitment is None else commitment
            )
        )
        leaves.append(bytes(leaf))
        key = keys.get(device_id or 0)
        if held and key is not None:
            tail = content_tail(
                salt_for(bytes(key), customer, int(idx)),
                topic,
                None if payload is None else bytes(payload),
            )
            tails.append((index, tail))
    text_digests: set[str] = set()
    body_lines: list[JsonLine] = []
    commitments: set[bytes] = set()
    for digest, doc in sorted(docs.items()):
        value = orjson.loads(doc)
        text_digests.update(str(value[k]) for k in ("text_de", "text_en") if value.get(k))
        if value.get("names"):
            commitments.add(bytes.fromhex(str(value["names"])))
        body_lines.append(BodyLine(t="body", digest=digest, body=doc.decode("utf-8")))
    body_lines += _names_lines(conn, chain_id, commitments, keys)
    for hexdigest in sorted(text_digests):
        found = conn.execute(
            "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(hexdigest),)
        ).fetchone()
        text = "" if found is None else str(found[0])
        lines.append(TextLine(t="text", digest=bytes.fromhex(hexdigest), text=text))
    lines += body_lines
    for first in range(0, len(records), CHUNK):
        chunk = b"".join(records[first : first + CHUNK] + leaves[first : first + CHUNK])
        lines.append(
            EntriesLine(t="entries", first=start + first, data=base64.b64encode(chunk).decode())
        )
    for first in range(0, len(tails), CHUNK):
        chunk = _content_chunk(tails[first : first + CHUNK])
        lines.append(ContentLine(t="content", data=base64.b64encode(chunk).decode()))
    cosigned = cosignatures(conn)
    for checkpoint_id, note in conn.execute(
        "SELECT id, note FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL AND size > ?"
        " ORDER BY size, id",
        (chain_id, info.base + start),
    ):
        note_text = str(note) + cosigned.get(int(checkpoint_id), "")
        lines.append(CheckpointLine(t="checkpoint", note=note_text))
    return b"".join(line.line() for line in lines)


def _signed_through(conn: sqlite3.Connection, chain_id: int) -> int:
    """The chain position up to which the newest stored checkpoint signs; without any
    checkpoint, every entry (and the verifier says what is uncovered)."""
    row = conn.execute(
        "SELECT max(size) FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL", (chain_id,)
    ).fetchone()
    return 2**62 if row is None or row[0] is None else int(row[0])


def _content_chunk(tails: Sequence[tuple[int, bytes]]) -> bytes:
    """u32 k || k × u64 index || k × u32 length || the k records (SPEC §6)."""
    k = len(tails)
    return b"".join(
        [
            struct.pack(f">I{k}Q{k}I", k, *(i for i, _ in tails), *(len(t) for _, t in tails)),
            *(t for _, t in tails),
        ]
    )


def _names_lines(
    conn: sqlite3.Connection, chain_id: int, commitments: set[bytes], keys: dict[Any, Any]
) -> list[JsonLine]:
    """The names documents still held, each with its subject's salt (erased ones are absent)."""
    if not commitments:
        return []
    lines: list[JsonLine] = []
    for device_id, commitment, doc in conn.execute(
        "SELECT device_id, commitment, doc FROM names WHERE chain_id = ? ORDER BY commitment",
        (chain_id,),
    ):
        key = keys.get(device_id)
        if bytes(commitment) in commitments and key is not None:
            lines.append(
                NamesLine(
                    t="names",
                    commitment=bytes(commitment),
                    salt=names_salt(bytes(key)),
                    doc=bytes(doc).decode("utf-8"),
                )
            )
    return lines


# -- checking ------------------------------------------------------------------------------------


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


def read_kept(
    data: bytes | Path, pinned: PublicKey, tree: TreeInput, *, with_leaves: bool = True
) -> Kept:
    """What the customer kept (``--since``): a checkpoint note file or an earlier bundle.

    ``with_leaves`` keeps an earlier bundle's leaves, so a rewritten history is named at its
    first changed entry (the whole-file checker's need; the streaming proof needs the root)."""
    if isinstance(data, Path):
        with data.open("rb") as kept_file:
            is_bundle = kept_file.read(1) == b"{"
        if is_bundle and not with_leaves:
            old = verify_bundle_file(data, pinned)
            if old.problem is not None:
                raise UnusableInput(
                    f"--since: the earlier bundle does not verify itself: {old.problem}"
                )
            return Kept(old.covered, old.root)
        data = data.read_bytes()
    text = data.decode("utf-8", "replace")
    if text.startswith("{"):
        old = verify_bundle(data, pinned)
        if old.problem is not None:
            raise UnusableInput(
                f"--since: the earlier bundle does not verify itself: {old.problem}"
            )
        if not with_leaves:
            return Kept(old.covered, old.root)
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
    since: bytes | Path | None = None,
) -> TreeVerdict:
    """Verify a bundle (v3, or v2) with the key the customer trusts (and optionally what they kept)."""
    return _verify(lambda: io.BytesIO(data), lambda: data, pinned, witnesses, since)


def verify_bundle_file(
    path: Path,
    pinned: PublicKey,
    *,
    witnesses: WitnessPolicy = NO_WITNESSES,
    since: bytes | Path | None = None,
) -> TreeVerdict:
    """:func:`verify_bundle` of the file at ``path``, read as a stream: a bundle that proves
    good is never held in memory whole (``gateway.log.bundle_stream``). A pipe or another
    file that cannot be read twice (``einblick verify <(…)``) is read whole first."""
    if not path.is_file():
        return verify_bundle(path.read_bytes(), pinned, witnesses=witnesses, since=since)
    # 1 MiB buffers: an entries line is ~200 kB, read in one system call rather than 25
    return _verify(
        lambda: path.open("rb", buffering=_BUFFER), path.read_bytes, pinned, witnesses, since
    )


_BUFFER = 1 << 20


def _verify(
    opener: Opener,
    whole: Callable[[], bytes],
    pinned: PublicKey,
    witnesses: WitnessPolicy,
    since: bytes | Path | None,
) -> TreeVerdict:
    """The streaming proof first; at any doubt, the whole-file checker, which decides and
    names the first bad entry (so every verdict other than OK comes from it)."""
    with contextlib.suppress(NotProven):
        return prove_bundle(
            opener,
            pinned,
            witnesses=witnesses,
            kept=None
            if since is None
            else lambda tree: read_kept(since, pinned, tree, with_leaves=False),
        )
    return verify_whole_bundle(whole(), pinned, witnesses=witnesses, since=since)


def verify_whole_bundle(
    data: bytes,
    pinned: PublicKey,
    *,
    witnesses: WitnessPolicy = NO_WITNESSES,
    since: bytes | Path | None = None,
) -> TreeVerdict:
    bundle = parse_bundle(data)
    kept = None if since is None else read_kept(since, pinned, bundle.tree)
    verdict = check_tree(bundle.tree, pinned, witnesses=witnesses, since=kept)
    text = _text_problem(bundle)
    if text is not None and (verdict.problem is None or text.index < verdict.problem.index):
        verdict.problem = text
    return verdict
