"""Which keys a 0.1.0 log (and a v1 export) is checked against: the pinned key, or the log's
first key when none is pinned, and every key linked to a trusted one by a rotation record
that both the old and the new key signed. A record that does not verify links nothing and is
reported as a key problem.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.log.chain import rotation_message
from gateway.log.keys import PublicKey, fingerprint

__all__ = ["KeyRecord", "load_keys", "trusted_keys"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A public key; rotation records carry the previous key and both signatures."""

    public: bytes
    added_at: int
    prev_key_id: bytes | None = None
    sig_old: bytes | None = None
    sig_new: bytes | None = None


def trusted_keys(
    origin: str, keys: Sequence[KeyRecord], pinned: PublicKey | None
) -> tuple[dict[bytes, PublicKey], list[str]]:
    """The keys to trust: the pinned key (or the first key) and keys linked by valid rotations."""
    problems: list[str] = []
    by_id = {PublicKey(k.public).key_id: k for k in keys}
    links: list[tuple[bytes, bytes]] = []
    for k in keys:
        if k.prev_key_id is None:
            if k.added_at != 0 or k.sig_old is not None or k.sig_new is not None:
                problems.append(
                    f"first key {PublicKey(k.public).fingerprint}: expected a bare record "
                    f"(added_at 0, no signatures), found added_at {k.added_at}"
                )
            continue
        old = by_id.get(k.prev_key_id)
        new = PublicKey(k.public)
        if old is None or k.sig_old is None or k.sig_new is None:
            problems.append(f"rotation to {new.fingerprint}: previous key record missing")
            continue
        message = rotation_message(origin, old.public, k.public, k.added_at)
        if not PublicKey(old.public).verify(k.sig_old, message):
            problems.append(
                f"rotation to {new.fingerprint}: signature of the old key "
                f"{fingerprint(k.prev_key_id)} does not verify"
            )
        elif not new.verify(k.sig_new, message):
            problems.append(f"rotation to {new.fingerprint}: signature of the new key fails")
        else:
            links.append((k.prev_key_id, new.key_id))
    if pinned is not None:
        trusted = {pinned.key_id: pinned}
    else:
        roots = [k for k in keys if k.prev_key_id is None]
        trusted = {PublicKey(r.public).key_id: PublicKey(r.public) for r in roots[:1]}
    changed = True
    while changed:
        changed = False
        for old_id, new_id in links:
            if (old_id in trusted) != (new_id in trusted):
                other = new_id if old_id in trusted else old_id
                trusted[other] = PublicKey(by_id[other].public)
                changed = True
    return trusted, problems


def load_keys(conn: sqlite3.Connection) -> list[KeyRecord]:
    return [
        KeyRecord(bytes(r[0]), r[1], r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT public, added_at, prev_key_id, sig_old, sig_new FROM keys WHERE id > 0 "
            "ORDER BY id"
        )
    ]
