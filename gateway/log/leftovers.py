"""What a handed-over tree leaves on the old instance, and removing its personal part.

After ``einblick handover`` the new instance holds the customer's whole tree (its entries up to
the handover were copied, ``gateway.log.transfer``), so the old instance's closed copy is a
second copy of the customer's personal data that no erasure on the new instance would reach.
Once the new instance's handover record is committed, the old instance removes:

- the stored content, topics, names documents and subject keys of the tree
  (``gateway.log.forget``, as an erasure of the whole customer does);
- the customer's consent events (people's names in ``by``) and pseudonymisation keys, and the
  name of whoever asked for each of its erasures (``gateway.log.carried``: they went with the
  tree).

Any queued release of the customer still in the outbox (a handover waits until there are none,
so this is a leftover of an older release or a crash) is the outbox's to delete
(``gateway.messages.outbox.erase``), in the same transaction (``gateway/operations/moved.py``).

What stays, and why: the tree's leaves, bodies, stored subtree hashes, checkpoints with their
cosignatures and the keys they name. None of them holds a personal value (bodies carry only
commitments, ``gateway.log.schema``), and they are what the old instance needs to keep working
and what a stranger needs to check it: the last entry, ``handing_over``, is the signed record
that this instance gave the customer away (``gateway.log.moves``: without it the ``cluster:``
section would make the customer this instance's again); ``einblick verify`` of this database
checks every tree in it, the closed one included, and a checkpoint signed here before the move
stays provable from this database too. The erasure notices sent to recipients, and whether
they acknowledged them, stay as well: they hold no personal value, and a recipient's late
acknowledgement must still find its notice.

The caller runs :func:`remove_leftovers` in its write transaction on the connection with
``secure_delete=ON`` and then copies the WAL into the database (``gateway.log.forget.scrub``),
so no old page keeps a copy. It runs only after :func:`taken_over_by` confirmed, in the new
instance's own database, the record that continues the tree: before that, the new instance may
still need to read the tree from here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.log.carried import CARRIED_TABLES
from gateway.log.forget import forget
from gateway.log.handovers import HANDED_OVER, HANDING_OVER

__all__ = ["Leftovers", "closed_for", "personal_rows", "remove_leftovers", "taken_over_by"]


@dataclass(frozen=True, slots=True)
class Leftovers:
    """How many rows of each kind were removed (or are still there)."""

    content: int
    names: int  # names documents, topics and subject keys
    rights: int  # consent events, erasure requests, pseudonymisation keys

    @property
    def total(self) -> int:
        return self.content + self.names + self.rights


def _chain(conn: sqlite3.Connection, customer: str) -> int | None:
    row = conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
    return None if row is None else int(row[0])


def _reason(doc: bytes) -> tuple[object, dict[str, object]]:
    value = orjson.loads(doc)
    if not isinstance(value, dict):
        return None, {}
    params = value.get("reason_params")
    return value.get("reason"), params if isinstance(params, dict) else {}


def closed_for(conn: sqlite3.Connection, customer: str) -> tuple[int, str] | None:
    """``(size, new origin)`` when ``customer``'s tree here ends with its ``handing_over``
    entry (closed at ``size`` entries for that origin); None otherwise."""
    row = conn.execute(
        "SELECT e.idx, b.doc FROM entries e JOIN bodies b ON b.id = e.body_id JOIN chains c"
        " ON c.id = e.chain_id WHERE c.name = ? ORDER BY e.idx DESC LIMIT 1",
        (customer,),
    ).fetchone()
    if row is None:
        return None
    reason, params = _reason(bytes(row[1]))
    if reason != HANDING_OVER:
        return None
    return int(row[0]) + 1, str(params.get("to", ""))


def taken_over_by(target_db: Path, customer: str, old_origin: str, size: int) -> bool:
    """Whether the database at ``target_db`` holds, committed, the handover record that
    continues ``customer``'s tree closed under ``old_origin`` at ``size`` entries (its entry at
    index ``size``). Anything else — no file, another tree, a record naming another origin or
    size, an unreadable database — is False: the copy here is then still needed."""
    if not target_db.is_file():
        return False
    try:
        conn = sqlite3.connect(Path(target_db).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            "SELECT b.doc FROM entries e JOIN bodies b ON b.id = e.body_id JOIN chains c"
            " ON c.id = e.chain_id WHERE c.name = ? AND e.idx = ?",
            (customer, size),
        ).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    if row is None:
        return False
    reason, params = _reason(bytes(row[0]))
    return (
        reason == HANDED_OVER
        and params.get("from") == old_origin
        and params.get("size") == str(size)
    )


# An erasure request's row stays (its notices to recipients refer to it by id, and a late
# acknowledgement must find it); only the name of the person who asked goes.
_KEPT = {"erasures": " AND requested_by != ''"}


def personal_rows(conn: sqlite3.Connection, customer: str) -> Leftovers:
    """What of ``customer`` this database still holds that :func:`remove_leftovers` removes."""
    chain = _chain(conn, customer)

    def count(sql: str, *params: object) -> int:
        return int(conn.execute(sql, params).fetchone()[0])

    content = names = 0
    if chain is not None:
        content = count(
            "SELECT count(*) FROM content WHERE seq IN (SELECT seq FROM entries WHERE chain_id = ?)",
            chain,
        )
        names = sum(
            count(f"SELECT count(*) FROM {t} WHERE chain_id = ?", chain)
            for t in ("topics", "names", "subject_keys")
        )
    rights = sum(
        count(f"SELECT count(*) FROM {t} WHERE customer = ?{_KEPT.get(t, '')}", customer)
        for t in CARRIED_TABLES
    )
    return Leftovers(content, names, rights)


def remove_leftovers(conn: sqlite3.Connection, customer: str) -> Leftovers:
    """Delete ``customer``'s personal rows, in the caller's transaction; what was removed.
    Running it again removes nothing more (and answers zeros)."""
    found = personal_rows(conn, customer)
    chain = _chain(conn, customer)
    if chain is not None:
        forget(conn, chain, None)
    for table in CARRIED_TABLES:
        if table == "erasures":
            conn.execute("UPDATE erasures SET requested_by = '' WHERE customer = ?", (customer,))
            continue
        conn.execute(f"DELETE FROM {table} WHERE customer = ?", (customer,))
    return found
