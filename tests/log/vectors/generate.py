"""Write the test vectors: a good bundle and one tampered bundle per class, with verdicts.

``python -m tests.log.vectors.generate`` rewrites this directory: ``good.bundle``, one file per
tamper class, the public keys, kept checkpoints for ``--since``, and ``vectors.json`` listing
each file with the exit code ``einblick verify`` must give and the first bad entry it must name.
The keys are fixed seeds (below), so anyone can re-sign a vector; subject keys are random, so a
regeneration changes content salts and bytes but never a verdict. ``tests/log/test_vectors.py``
runs the verifier over every vector.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.bundle import export_customer
from gateway.log.checkpoints import latest_note
from gateway.log.jcs import canonical
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_SIZE
from gateway.log.merkle import leaf_hash, root_of_leaf_hashes
from gateway.log.note import Checkpoint, sign_note
from tests.log.conftest import ORIGIN, Log, make_draft
from tests.log.vectors.handover import HANDOVER_SEED, NEW_BOX, handed_over_bundle

HERE = Path(__file__).parent
C = "baeckerei-schmidt"
OTHER = "metallbau-huber"
RECORD = ENTRY_SIZE + 32
OLD_SEED = bytes(range(32))
NEW_SEED = bytes(range(32, 64))
ATTACKER_SEED = bytes(range(64, 96))


def _signer(seed: bytes) -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


def _dump(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(canonical(line) + b"\n" for line in lines)


def _records(lines: list[dict[str, Any]]) -> list[bytes]:
    """Each entry's 114 bytes followed by its listed leaf (one line: k entries, then k leaves)."""
    records = []
    for line in lines:
        if line["t"] == "entries":
            data = base64.b64decode(line["data"])
            k = len(data) // RECORD
            entries, leaves = data[: k * ENTRY_SIZE], data[k * ENTRY_SIZE :]
            records += [
                entries[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE] + leaves[i * 32 : (i + 1) * 32]
                for i in range(k)
            ]
    return records


def _with_records(lines: list[dict[str, Any]], records: list[bytes]) -> list[dict[str, Any]]:
    out = [x for x in lines if x["t"] != "entries"]
    at = next(i for i, x in enumerate(out) if x["t"] in ("content", "checkpoint"))
    data = b"".join(r[:ENTRY_SIZE] for r in records) + b"".join(r[ENTRY_SIZE:] for r in records)
    chunk = {"t": "entries", "first": 0, "data": base64.b64encode(data).decode()}
    return [*out[:at], chunk, *out[at:]]


def _without_first_content(data: bytes) -> tuple[int, bytes]:
    """A content line's bytes with its first record dropped, and that record's entry index."""
    (k,) = struct.unpack_from(">I", data)
    indexes = struct.unpack_from(f">{k}Q", data, 4)
    lengths = struct.unpack_from(f">{k}I", data, 4 + 8 * k)
    rest = data[4 + 12 * k + lengths[0] :]
    return indexes[0], struct.pack(f">I{k - 1}Q{k - 1}I", k - 1, *indexes[1:], *lengths[1:]) + rest


def _resign(
    lines: list[dict[str, Any]], signer: Signer, origin: str, *, key: bytes | None = None
) -> list[dict[str, Any]]:
    """Every checkpoint re-signed over the (changed) leaves, as a key holder could."""
    leaves = [r[ENTRY_SIZE:] for r in _records(lines)]
    out = []
    for line in lines:
        if line["t"] == "checkpoint":
            size = Checkpoint.parse(line["note"].split("\n\n")[0] + "\n").size
            root = root_of_leaf_hashes(leaves[:size])
            text = Checkpoint(origin, size, root).text
            out.append({"t": "checkpoint", "note": sign_note(text, [signer.note_signer(origin)])})
        elif line["t"] == "header" and key is not None:
            out.append({**line, "key": key.hex()})
        else:
            out.append(line)
    return out


def build(directory: Path) -> list[dict[str, Any]]:
    old, new = _signer(OLD_SEED), _signer(NEW_SEED)
    attacker = _signer(ATTACKER_SEED)
    origin = f"{ORIGIN}/{C}"
    vectors: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Log(Path(tmp) / "log.db", old)
        for batch in range(3):
            log.write([make_draft(i, customer=C) for i in range(batch * 8, batch * 8 + 8)])
        log.write([make_draft(i, customer=OTHER) for i in range(4)])
        kept_small = latest_note(log.conn, C)
        kept_bundle = export_customer(log.path, C)
        at = make_draft(30).at
        log.conn.execute("BEGIN IMMEDIATE")
        log.writer.rotate_key(new, at)
        log.writer.checkpoint(at)
        log.conn.execute("COMMIT")
        log.writer.committed()
        log.write([make_draft(40 + i, customer=C) for i in range(8)])
        good = export_customer(log.path, C)
        other = export_customer(log.path, OTHER)
        log.close()
    assert kept_small is not None
    (directory / "old.pub").write_text(old.public.pem())
    (directory / "new.pub").write_text(new.public.pem())
    (directory / "kept.checkpoint").write_text(kept_small)
    (directory / "kept.bundle").write_bytes(kept_bundle)
    lines = _lines(good)
    records = _records(lines)
    n = len(records)
    rotation = 24  # the rotation record's index (after 24 entries)
    covered_before_last = Checkpoint.parse(
        [x for x in lines if x["t"] == "checkpoint"][-2]["note"].split("\n\n")[0] + "\n"
    ).size

    def add(
        name: str, data: bytes, code: int, index: int | None, key: str = "old.pub", **extra: str
    ) -> None:
        (directory / name).write_bytes(data)
        vectors.append({"file": name, "key": key, "expect": code, "index": index, **extra})

    add("good.bundle", good, 0, None)
    add("good-new-key.bundle", good, 0, None)
    vectors[-1]["key"] = "new.pub"  # trusting the newer key works through the rotation record
    add("good-since-checkpoint.bundle", good, 0, None, since="kept.checkpoint")
    add("good-since-bundle.bundle", good, 0, None, since="kept.bundle")

    flipped = list(records)
    flipped[5] = flipped[5][:20] + bytes([flipped[5][20] ^ 1]) + flipped[5][21:]
    add("byte-flip.bundle", _dump(_with_records(lines, flipped)), 1, 5)

    add("deletion.bundle", _dump(_with_records(lines, records[:5] + records[6:])), 1, 5)
    swapped = list(records)
    swapped[4], swapped[5] = swapped[5], swapped[4]
    add("swap.bundle", _dump(_with_records(lines, swapped)), 1, 4)
    add("insertion.bundle", _dump(_with_records(lines, records[:4] + records[3:])), 1, 3)
    add("truncation.bundle", _dump(_with_records(lines, records[:-3])), 1, n - 3)

    # an entry appended after the last checkpoint, well-formed, with its right leaf: no key needed
    fake = bytearray(records[-1][:ENTRY_SIZE])
    fake[1:9] = n.to_bytes(8, "big")
    fabricated = bytes(fake) + leaf_hash(bytes(fake))
    add("fabricated-tail.bundle", _dump(_with_records(lines, [*records, fabricated])), 2, n)

    last_cp = max(i for i, x in enumerate(lines) if x["t"] == "checkpoint")
    add(
        "last-checkpoint-removed.bundle",
        _dump(lines[:last_cp] + lines[last_cp + 1 :]),
        2,
        covered_before_last,
    )

    # the first content record dropped, with no erasure behind it
    at_line = next(i for i, x in enumerate(lines) if x["t"] == "content")
    victim, rest = _without_first_content(base64.b64decode(lines[at_line]["data"]))
    stripped = list(lines)
    stripped[at_line] = {"t": "content", "data": base64.b64encode(rest).decode()}
    add("content-stripped.bundle", _dump(stripped), 1, victim)

    # the first names document dropped, with no erasure of its subject behind it: named at the
    # first entry whose body commits to it
    names_at = next(i for i, x in enumerate(lines) if x["t"] == "names")
    commitment = lines[names_at]["commitment"]
    bodies = {
        bytes.fromhex(x["digest"]): orjson.loads(x["body"]) for x in lines if x["t"] == "body"
    }
    first_use = next(
        i for i, r in enumerate(records) if bodies[r[17:49]].get("names") == commitment
    )
    add("names-stripped.bundle", _dump(lines[:names_at] + lines[names_at + 1 :]), 1, first_use)

    # the newest checkpoint re-signed by the key the rotation retired
    retired = list(lines)
    note = retired[last_cp]["note"]
    text = note.split("\n\n")[0] + "\n"
    retired[last_cp] = {"t": "checkpoint", "note": sign_note(text, [old.note_signer(origin)])}
    size = Checkpoint.parse(text).size
    add("retired-key.bundle", _dump(retired), 1, size - 1)

    # a whole history re-signed by another key, header included: the first thing that cannot
    # hold is the rotation record, signed away from a key the forged header never had
    add(
        "replaced-key.bundle",
        _dump(_resign(lines, attacker, origin, key=attacker.public.raw)),
        1,
        rotation,
    )
    # the same before any rotation: the key is not the one the customer trusts
    early = _lines(kept_bundle)
    add(
        "replaced-key-early.bundle",
        _dump(_resign(early, attacker, origin, key=attacker.public.raw)),
        1,
        0,
    )

    # another customer's checkpoint slipped in
    foreign = next(x for x in _lines(other) if x["t"] == "checkpoint")
    add("foreign-checkpoint.bundle", _dump([*lines, foreign]), 1, None)
    vectors[-1]["index"] = Checkpoint.parse(foreign["note"].split("\n\n")[0] + "\n").size - 1

    # history rewritten by the box key holder and re-signed: only --since catches it
    rewritten = list(records)
    changed = bytearray(rewritten[2][:ENTRY_SIZE])
    changed[9:17] = (int.from_bytes(changed[9:17], "big") + 1).to_bytes(8, "big")
    rewritten[2] = bytes(changed) + leaf_hash(bytes(changed))
    resigned = _resign(_with_records(lines, rewritten), new, origin)
    resigned = [
        {**x, "note": sign_note(x["note"].split("\n\n")[0] + "\n", [old.note_signer(origin)])}
        if x["t"] == "checkpoint"
        and Checkpoint.parse(x["note"].split("\n\n")[0] + "\n").size <= rotation
        else x
        for x in resigned
    ]
    add("rewritten-alone.bundle", _dump(resigned), 0, None)
    add("rewritten-since-checkpoint.bundle", _dump(resigned), 1, 0, since="kept.checkpoint")
    add("rewritten-since-bundle.bundle", _dump(resigned), 1, 2, since="kept.bundle")

    # a bundle cut back below what the customer kept, re-signed
    cut = _lines(kept_bundle)
    small = _records(cut)[:10]
    cut_back = _resign(
        [x for x in _with_records(cut, small) if x["t"] != "checkpoint"]
        + [{"t": "checkpoint", "note": "placeholder\n10\n" + "A" * 43 + "=\n\n— x AAAAAA==\n"}],
        old,
        origin,
    )
    add("cut-back.bundle", _dump(cut_back), 1, 10, since="kept.checkpoint")

    add("unusable.bundle", b"this is not a bundle\n", 3, None)
    add("not-canonical.bundle", good.replace(b'{"customer"', b'{ "customer"', 1), 3, None)
    _handover_vectors(directory, old, add)
    return vectors


def _handover_vectors(directory: Path, old: Signer, add: Callable[..., None]) -> None:
    """A log handed over from instance ``gw-test`` to ``gw-hall-b`` (SPEC.md §4, "Handover")
    after 12 entries, and what a verifier must refuse about it."""
    new = _signer(HANDOVER_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        _handovers(directory, old, new, Path(tmp), add)


def _handovers(
    directory: Path, old: Signer, new: Signer, work: Path, add: Callable[..., None]
) -> None:
    made = handed_over_bundle(old, new, work)
    (directory / "handover.pub").write_text(new.public.pem())
    (directory / "handover-kept.bundle").write_bytes(made.before)
    n = made.size  # the handover record's index
    new_origin = f"{NEW_BOX}/{C}"
    add("good-handover.bundle", made.after, 0, None)
    # trusting the new instance's key works through the handover record, like a rotation
    add("good-handover-new-key.bundle", made.after, 0, None, "handover.pub")
    # a bundle the customer kept from before the handover: one consistency chain across
    add("good-handover-since-bundle.bundle", made.after, 0, None, since="handover-kept.bundle")
    add(
        "good-handover-since-checkpoint.bundle",
        made.after,
        0,
        None,
        since="handover-kept.checkpoint",
    )
    (directory / "handover-kept.checkpoint").write_text(made.kept_note)
    lines = _lines(made.after)

    # the record signed by the new instance alone (the old key's signature replaced by the
    # new key's over the same record): one key cannot move a log
    add("handover-one-signature.bundle", _dump(made.tampered(sig_old_by=new)), 1, n)
    # both keys signed, but over a root the old instance never signed / one entry too early
    add("handover-wrong-root.bundle", _dump(made.tampered(root=bytes(32))), 1, n)
    add("handover-wrong-size.bundle", _dump(made.tampered(size=n - 1)), 1, n)
    # the old instance kept writing into the tree after its final entry, and signed it
    add("handover-old-writes-on.bundle", made.old_wrote_on, 1, n)
    # a checkpoint past the handover signed under the old origin by the old key
    first_new = next(
        x
        for x in lines
        if x["t"] == "checkpoint" and Checkpoint.parse(x["note"].split("\n\n")[0] + "\n").size > n
    )
    size = Checkpoint.parse(first_new["note"].split("\n\n")[0] + "\n").size
    old_origin = f"{ORIGIN}/{C}"
    root = Checkpoint.parse(first_new["note"].split("\n\n")[0] + "\n").root
    forged = sign_note(Checkpoint(old_origin, size, root).text, [old.note_signer(old_origin)])
    stale = [x if x is not first_new else {"t": "checkpoint", "note": forged} for x in lines]
    add("handover-old-origin-after.bundle", _dump(stale), 1, size - 1)
    assert new_origin in made.after.decode()


def main() -> int:
    for old in HERE.glob("*.bundle"):
        old.unlink()
    vectors = build(HERE)
    (HERE / "vectors.json").write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"{len(vectors)} vectors written to {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
