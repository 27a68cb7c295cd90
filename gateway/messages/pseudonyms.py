"""Pseudonymisation keys: one per customer and recipient, kept on the box, destroyed on erasure.

The engine asks for a key while deciding (synchronously, on the hot path), so keys live in memory
and are loaded once. A key made for the first time is written in the same transaction as the log
entries of the batch that used it: no pseudonym reaches a recipient whose key could be lost in a
crash, which would silently re-key the customer and break the recipient's continuity.

The ``pseudonym_keys`` table is created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import secrets
import sqlite3

__all__ = ["Keyring", "destroy_keys"]


class Keyring:
    """Implements ``policies.engine.PseudonymKeys`` over the gateway's database."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], bytes] = {}
        self._new: dict[tuple[str, str], bytes] = {}

    def load(self, conn: sqlite3.Connection) -> None:
        self._keys = {
            (c, r): bytes(k)
            for c, r, k in conn.execute("SELECT customer, recipient, key FROM pseudonym_keys")
        }

    def load_customer(self, conn: sqlite3.Connection, customer: str) -> None:
        """A customer's keys that arrived with its log from another instance (a handover):
        added beside the others, whose keys made but not yet written stay as they are."""
        for c, r, k in conn.execute(
            "SELECT customer, recipient, key FROM pseudonym_keys WHERE customer = ?", (customer,)
        ):
            self._keys[(str(c), str(r))] = bytes(k)

    def key(self, customer: str, recipient: str) -> bytes | None:
        found = self._keys.get((customer, recipient))
        if found is None:
            found = secrets.token_bytes(32)
            self._keys[(customer, recipient)] = found
            self._new[(customer, recipient)] = found
        return found

    def take_new(self) -> dict[tuple[str, str], bytes]:
        """Keys made since the last call; the caller writes them with its batch."""
        new, self._new = self._new, {}
        return new

    def restore(self, new: dict[tuple[str, str], bytes]) -> None:
        """The batch that was to persist ``new`` rolled back: keep them pending."""
        self._new.update(new)

    @staticmethod
    def persist(conn: sqlite3.Connection, new: dict[tuple[str, str], bytes], now_us: int) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO pseudonym_keys (customer, recipient, key, created) VALUES (?, ?, ?, ?)",
            [(c, r, k, now_us) for (c, r), k in new.items()],
        )

    def erase(self, conn: sqlite3.Connection, customer: str) -> int:
        """Destroy a customer's keys: earlier pseudonyms can no longer be linked to anyone."""
        destroyed = destroy_keys(conn, customer)
        for pair in [p for p in self._keys if p[0] == customer]:
            del self._keys[pair]
            self._new.pop(pair, None)
        return destroyed


def destroy_keys(conn: sqlite3.Connection, customer: str) -> int:
    """Delete a customer's stored keys (also with no keyring loaded: an offline erasure); how
    many."""
    return conn.execute("DELETE FROM pseudonym_keys WHERE customer = ?", (customer,)).rowcount
