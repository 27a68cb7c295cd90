"""The stored log as the proof checker reads it, and what the database keeps beside the proof.

``tree_input`` turns one log's rows into a ``gateway.log.proof.TreeInput`` (the same shape a
bundle gives), in bulk. What the database holds beside the proof (the filter columns viewers
search by, the order entries are listed in, checkpoint rows repeating their notes, the key the
tree started with, the seal of a 0.1.0 chain) is compared with it here, each disagreement a
``ChainBroken`` naming the entry.
"""

from __future__ import annotations

import base64
import itertools
import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import ChainBroken
from gateway.log.chain import content_tail, salt_for, text_digest
from gateway.log.checkpoints import cosignatures
from gateway.log.entry import OUTCOMES
from gateway.log.handovers import HANDING_OVER
from gateway.log.leaf import ENTRY_LAYOUT, ENTRY_SIZE, TreeInput, tree_origin
from gateway.log.names import has_names, names_salt
from gateway.log.note import Checkpoint, NoteError
from gateway.log.tree import TreeHashes, TreeInfo

__all__ = ["note_signature", "rows_problem", "seal_problem", "tree_input"]


def tree_input(
    conn: sqlite3.Connection, origin: str, name: str, info: TreeInfo, *, check_content: bool = True
) -> tuple[TreeInput, ChainBroken | None]:
    """One log's tree as the proof checker takes it, read from the database, and the first
    disagreement between the rows and the order or filter columns viewers rely on."""
    chain_id = info.chain_id
    key_row = conn.execute("SELECT public FROM keys WHERE key_id = ?", (info.first_key,)).fetchone()
    first_key = b"" if key_row is None else bytes(key_row[0])
    start = info.base + info.dropped
    rows = conn.execute(
        "SELECT idx, at, body_id, source, commitment, hash, seq, device_id, recipient_id,"
        " outcome FROM entries WHERE chain_id = ? AND idx >= ? ORDER BY idx, seq",
        (chain_id, start),
    ).fetchall()
    digests = {int(i): bytes(d) for i, d in conn.execute("SELECT id, digest FROM bodies")}
    pack = ENTRY_LAYOUT.pack
    zero = bytes(32)
    base = info.base
    entries = b"".join(
        [
            pack(2, i - base, a, digests.get(b, zero), s, 0 if c is None else 1, c or zero)
            for i, a, b, s, c, _h, _q, _d, _r, _o in rows
        ]
    )
    leaves = [r[5] for r in rows]
    problem = _order_problem(rows, name)
    combos = {(r[2], r[7], r[8], r[9]) for r in rows}
    used = {digests.get(c[0], zero) for c in combos}
    bodies = {
        bytes(d): bytes(doc)
        for d, doc in conn.execute(
            "SELECT digest, doc FROM bodies WHERE id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(sorted({c[0] for c in combos})).decode(),),
        )
        if bytes(d) in used
    }
    columns = _filter_columns(conn, rows, combos, digests, bodies, name)
    if columns is not None and (problem is None or columns.index < problem.index):
        problem = columns
    cosigned = cosignatures(conn)
    notes = [
        str(note) + cosigned.get(int(i), "")
        for i, note in conn.execute(
            "SELECT id, note FROM checkpoints WHERE chain_id = ? AND note IS NOT NULL AND size > ?",
            (chain_id, start),
        )
    ]
    content: dict[int, bytes] = {}
    absent: frozenset[int] = frozenset()
    if check_content:
        keys = {
            int(d): bytes(k)
            for d, k in conn.execute(
                "SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain_id,)
            )
        }
        for idx, device_id, topic_id, topic, payload in conn.execute(
            "SELECT e.idx, e.device_id, c.topic_id, t.topic, c.payload FROM content c"
            " JOIN entries e ON e.seq = c.seq LEFT JOIN topics t ON t.id = c.topic_id"
            " WHERE e.chain_id = ? AND e.idx >= ?",
            (chain_id, start),
        ):
            key = keys.get(int(device_id or 0))
            if key is None or (topic_id is not None and topic is None):
                continue  # cannot be checked: counts as absent, so an erasure must cover it
            content[int(idx) - base] = content_tail(
                salt_for(key, name, int(idx)), topic, None if payload is None else bytes(payload)
            )
    else:
        absent = frozenset(int(r[0]) - base for r in rows if r[4] is not None)
    tree = TreeInput(
        origin=tree_origin(origin, name),
        customer=name,
        first_key=first_key,
        entries=entries,
        leaves=leaves,
        bodies=bodies,
        checkpoints=notes,
        start=info.dropped,
        start_hashes=TreeHashes(conn, chain_id, base).compact_range(info.dropped)
        if info.dropped
        else (),
        content=content,
        content_known_absent=absent,
        names=_held_names(conn, chain_id, bodies),
        moved=bool(rows) and _closed_by_handover(bodies.get(digests.get(rows[-1][2], zero))),
    )
    return tree, problem


def _closed_by_handover(body: bytes | None) -> bool:
    """Whether a tree's last body is the old instance's ``handing_over`` entry."""
    if body is None:
        return False
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("reason") == HANDING_OVER


def _blob(value: object) -> bytes:
    """A hand-edited row may hold text where a blob belongs: its bytes all the same."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]


def _held_names(
    conn: sqlite3.Connection, chain_id: int, bodies: Mapping[bytes, bytes]
) -> dict[bytes, tuple[bytes | None, bytes]]:
    """The names documents the tree's bodies commit to that are still held, each with its
    subject's salt (None: the key is gone, which forgetting never leaves behind)."""
    if not has_names(conn):
        return {}
    wanted: set[bytes] = set()
    for raw in bodies.values():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # the proof check names it
        ref = doc.get("names") if isinstance(doc, dict) else None
        if isinstance(ref, str) and _is_hex(ref):
            wanted.add(bytes.fromhex(ref))
    if not wanted:
        return {}
    keys = {
        int(d): bytes(k)
        for d, k in conn.execute(
            "SELECT device_id, key FROM subject_keys WHERE chain_id = ?", (chain_id,)
        )
    }
    held: dict[bytes, tuple[bytes | None, bytes]] = {}
    for device_id, stored, doc in conn.execute(
        "SELECT device_id, commitment, doc FROM names WHERE chain_id = ?", (chain_id,)
    ):
        commitment = _blob(stored)
        if commitment in wanted:
            key = keys.get(int(device_id))
            held[commitment] = (None if key is None else names_salt(key), _blob(doc))
    return held


def _order_problem(rows: list[tuple[Any, ...]], name: str) -> ChainBroken | None:
    """Entries are written in index order: a later index with a smaller ``seq`` was moved
    (the order viewers list entries in)."""
    seqs = [r[6] for r in rows]
    if all(a < b for a, b in itertools.pairwise(seqs)):
        return None
    for pos in range(1, len(seqs)):
        if seqs[pos - 1] >= seqs[pos]:
            return ChainBroken(
                name,
                int(rows[pos - 1][0]),
                "entries stored out of order",
                f"seq below {seqs[pos]}",
                f"seq {seqs[pos - 1]}",
            )
    return None


def _filter_columns(  # noqa: PLR0917 -- the rows and the lookups built once by tree_input
    conn: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    combos: set[tuple[Any, ...]],
    digests: dict[int, bytes],
    bodies: dict[bytes, bytes],
    name: str,
) -> ChainBroken | None:
    """The columns kept beside the body for filtering agree with it (what the TUI filters on)."""
    atoms = {int(i): str(v) for i, v in conn.execute("SELECT id, value FROM atoms")}
    names = {v: k for k, v in OUTCOMES.items()}
    bad: set[tuple[Any, ...]] = set()
    found_for: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
    for combo in combos:
        body_id, device_id, recipient_id, outcome = combo
        raw = bodies.get(digests.get(body_id, b""))
        try:
            body = None if raw is None else orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            continue  # the proof check names a missing or broken body
        found = (
            None if device_id is None else atoms.get(int(device_id)),
            None if recipient_id is None else atoms.get(int(recipient_id)),
            names.get(outcome, "?"),
        )
        expected = (body.get("device"), body.get("recipient"), body.get("outcome"))
        if found != expected:
            bad.add(combo)
            found_for[combo] = (expected, found)
    if not bad:
        return None
    first = next(r for r in rows if (r[2], r[7], r[8], r[9]) in bad)
    expected, found = found_for[(first[2], first[7], first[8], first[9])]
    return ChainBroken(
        name,
        int(first[0]),
        "filter columns disagree with the entry body",
        repr(expected),
        repr(found),
    )


def rows_problem(
    conn: sqlite3.Connection, info: TreeInfo, name: str, tree: TreeInput
) -> ChainBroken | None:
    """What the database keeps beside the proof agrees with it: the key the tree started with
    is stored, checkpoint rows repeat their signed note's size and root, texts their digests."""
    if not tree.first_key:
        return ChainBroken(
            name,
            info.base,
            "the key the log started with is not in the database",
            info.first_key.hex()[:16] + "…",
            "none",
        )
    for size, head, signature, note in conn.execute(
        "SELECT size, head, signature, note FROM checkpoints WHERE chain_id = ?"
        " AND note IS NOT NULL",
        (info.chain_id,),
    ):
        text = str(note)
        try:
            cp = Checkpoint.parse(text[: text.find("\n\n") + 1])
        except NoteError:
            continue  # the proof check names an unreadable note
        if bytes(signature) != note_signature(text):
            return ChainBroken(
                name,
                info.base + max(cp.size - 1, 0),
                "checkpoint row's signature is not its signed note's",
                note_signature(text).hex()[:16] + "…",
                bytes(signature).hex()[:16] + "…",
            )
        if (cp.size + info.base, cp.root) != (int(size), bytes(head)):
            return ChainBroken(
                name,
                info.base + max(cp.size - 1, 0),
                "checkpoint row disagrees with its signed note",
                f"size {cp.size + info.base}, root {cp.root.hex()[:16]}…",
                f"size {size}, root {bytes(head).hex()[:16]}…",
            )
    refs: dict[str, bytes] = {}
    for digest, raw in tree.bodies.items():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        for lang in ("text_de", "text_en"):
            ref = doc.get(lang) if isinstance(doc, dict) else None
            if isinstance(ref, str):
                refs.setdefault(ref, digest)
    stored = _texts(conn, refs)
    bad = [body for ref, body in refs.items() if stored.get(ref) is None]
    if bad:
        first = min(
            i
            for i in range(len(tree.entries) // ENTRY_SIZE)
            if tree.entries[i * ENTRY_SIZE + 17 : i * ENTRY_SIZE + 49] in set(bad)
        )
        return ChainBroken(
            name,
            info.base + tree.start + first,
            "explanation text changed or missing",
            "the text its digest names",
            "another text or none",
        )
    return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _texts(conn: sqlite3.Connection, refs: Mapping[str, bytes]) -> dict[str, str]:
    """The referenced texts that are stored and still hash to their digest."""
    good: dict[str, str] = {}
    for ref in refs:
        if not _is_hex(ref):
            continue
        row = conn.execute(
            "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(ref),)
        ).fetchone()
        if row is not None and text_digest(str(row[0])).hex() == ref:
            good[ref] = str(row[0])
    return good


def seal_problem(
    conn: sqlite3.Connection, info: TreeInfo, name: str, tree: TreeInput
) -> ChainBroken | None:
    """A migrated tree's first entry records the sealed chain's size and final hash."""
    if info.legacy_head is None or info.dropped or not tree.entries:
        return None
    body = tree.bodies.get(tree.entries[17:49])
    doc = {} if body is None else orjson.loads(body)
    params = doc.get("reason_params") or {}
    expected = {"legacy_size": str(info.base), "legacy_head": info.legacy_head.hex()}
    found = {k: params.get(k) for k in expected}
    if doc.get("reason") != "log_sealed" or found != expected:
        return ChainBroken(
            name,
            info.base,
            "the tree's first entry does not seal the old chain",
            repr(expected),
            repr(found),
        )
    last = conn.execute(
        "SELECT hash FROM entries WHERE chain_id = ? AND idx = ?", (info.chain_id, info.base - 1)
    ).fetchone()
    if last is not None and bytes(last[0]) != info.legacy_head:
        return ChainBroken(
            name,
            info.base - 1,
            "the sealed chain's final hash changed",
            info.legacy_head.hex()[:16],
            bytes(last[0]).hex()[:16],
        )
    return None


def note_signature(note: str) -> bytes:
    """The box's Ed25519 signature in a note (its first signature line, without the key ID)."""
    lines = note[note.find("\n\n") + 2 :].split("\n")
    try:
        return base64.b64decode(lines[0].rsplit(" ", 1)[1])[4:]
    except (IndexError, ValueError):
        return b""
