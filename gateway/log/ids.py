"""The ids the writer stores once and refers to: atoms, bodies, subject keys and topics.

An entry names its device and recipient by atom id, its body by id, its topic by id, and its
commitments are taken under the subject's key. Each is looked up in memory first, then in the
database, and inserted in the caller's open transaction when new. The writer throws a
``StoredIds`` away after a rollback (``LogWriter.rolled_back``): ids inserted by the rolled-back
transaction must not be handed out again.

The caches of bodies and topics are bounded in bytes (``gateway.cache``): their keys are shaped
by what devices send, and a forgotten entry is only looked up in the database again.
"""

from __future__ import annotations

import os
import sqlite3

from gateway.cache import SizedCache
from gateway.log.chain import Keyed, body_digest, keyed
from gateway.log.entry import EntryDraft, names_of
from gateway.log.names import seal_names

__all__ = ["BODIES_BYTES", "BODY_KEYS_BYTES", "TOPICS_BYTES", "StoredIds"]

# Bytes each memo table may hold (estimated: 2 per character, plus the objects).
BODIES_BYTES = 2 * 1024 * 1024
BODY_KEYS_BYTES = 8 * 1024 * 1024
TOPICS_BYTES = 2 * 1024 * 1024


def _chars(value: object) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, tuple):
        return sum(_chars(v) for v in value) + 8 * len(value)
    return 8


def _body_size(digest: bytes, body_id: int) -> int:
    return 200


def _body_key_size(key: tuple[object, ...], found: tuple[int, bytes]) -> int:
    return 2 * _chars(key) + 400


def _topic_size(key: tuple[int, int, str], topic_id: int) -> int:
    return 2 * len(key[2]) + 250


class StoredIds:
    """Ids of atoms, bodies and topics and the subjects' keys, inserted on first use."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._atoms: dict[str, int] = {}
        self._bodies: SizedCache[bytes, int] = SizedCache(BODIES_BYTES, _body_size)
        # A draft's body key (``gateway.log.entry.body_key``) -> (body id, digest): the append
        # path's shortcut past building and hashing the canonical body again.
        self.body_keys: SizedCache[tuple[object, ...], tuple[int, bytes]] = SizedCache(
            BODY_KEYS_BYTES, _body_key_size
        )
        self._subject_keys: dict[tuple[int, int], bytes] = {}
        # The same keys as ready hash states (``gateway.log.chain.keyed``), dropped with them.
        self._keyed: dict[tuple[int, int], Keyed] = {}
        self._topics: SizedCache[tuple[int, int, str], int] = SizedCache(TOPICS_BYTES, _topic_size)

    def atom(self, value: str) -> int:
        found = self._atoms.get(value)
        if found is None:
            row = self._conn.execute("SELECT id FROM atoms WHERE value = ?", (value,)).fetchone()
            if row is None:
                cur = self._conn.execute("INSERT INTO atoms (value) VALUES (?)", (value,))
                found = int(cur.lastrowid or 0)
            else:
                found = int(row[0])
            self._atoms[value] = found
        return found

    def names(self, chain_id: int, subject: int, draft: EntryDraft) -> bytes:
        """Store the draft's names document under its subject; returns its commitment."""
        commitment, doc = seal_names(self.subject_key(chain_id, subject), names_of(draft))
        self._conn.execute(
            "INSERT OR IGNORE INTO names (chain_id, device_id, commitment, doc)"
            " VALUES (?, ?, ?, ?)",
            (chain_id, subject, commitment, doc),
        )
        return commitment

    def body(self, canonical: bytes) -> tuple[int, bytes]:
        """(id, digest) of a canonical body document, stored once however often it recurs."""
        digest = body_digest(canonical)
        found = self._bodies.get(digest)
        if found is None:
            row = self._conn.execute("SELECT id FROM bodies WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                cur = self._conn.execute(
                    "INSERT INTO bodies (digest, doc) VALUES (?, ?)", (digest, canonical)
                )
                found = int(cur.lastrowid or 0)
            else:
                found = int(row[0])
            self._bodies.put(digest, found)
        return found, digest

    def subject_key(self, chain_id: int, device_id: int) -> bytes:
        """The subject's secret key, made at its first entry (erasure destroys it)."""
        found = self._subject_keys.get((chain_id, device_id))
        if found is None:
            row = self._conn.execute(
                "SELECT key FROM subject_keys WHERE chain_id = ? AND device_id = ?",
                (chain_id, device_id),
            ).fetchone()
            if row is None:
                found = os.urandom(32)
                self._conn.execute(
                    "INSERT INTO subject_keys (chain_id, device_id, key) VALUES (?, ?, ?)",
                    (chain_id, device_id, found),
                )
            else:
                found = bytes(row[0])
            self._subject_keys[(chain_id, device_id)] = found
        return found

    def keyed(self, chain_id: int, device_id: int) -> Keyed:
        """The subject's key as the writer hashes under it for every entry (source, salt)."""
        found = self._keyed.get((chain_id, device_id))
        if found is None:
            found = self._keyed[(chain_id, device_id)] = keyed(
                self.subject_key(chain_id, device_id)
            )
        return found

    def topic(self, chain_id: int, device_id: int, topic: str) -> int:
        key = (chain_id, device_id, topic)
        found = self._topics.get(key)
        if found is None:
            row = self._conn.execute(
                "SELECT id FROM topics WHERE chain_id = ? AND device_id = ? AND topic = ?", key
            ).fetchone()
            if row is None:
                cur = self._conn.execute(
                    "INSERT INTO topics (chain_id, device_id, topic) VALUES (?, ?, ?)", key
                )
                found = int(cur.lastrowid or 0)
            else:
                found = int(row[0])
            self._topics.put(key, found)
        return found

    def forget_subject(self, chain_id: int, device_id: int | None) -> None:
        """A subject was erased (a whole log when ``device_id`` is None): drop its keys, so its
        next entries get a new one, and every cached body and topic id."""
        self._subject_keys = {
            k: v
            for k, v in self._subject_keys.items()
            if not (k[0] == chain_id and (device_id is None or k[1] == device_id))
        }
        self._keyed = {k: v for k, v in self._keyed.items() if k in self._subject_keys}
        self._topics.clear()  # erasure is rare: forget every topic id, not only the subject's
        # Cached bodies name commitments under the destroyed keys: the subject's next entries
        # are committed under its new key.
        self.body_keys.clear()

    def forget_topics(self) -> None:
        """Topics were deleted: their ids must not be handed out from the cache again."""
        self._topics.clear()
