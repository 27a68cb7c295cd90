"""The one writer of the log: appends entries inside the caller's transaction.

The gateway's writer thread owns one ``sqlite3.Connection`` and, per batch, opens a transaction,
calls ``append`` (and ``checkpoint`` at least every second), inserts its outbox rows, commits, and
then calls ``committed()`` -- or ``rolled_back()`` after a rollback. ``LogWriter`` never commits
or rolls back itself: the log entry and the outbox row commit together or not at all.

Each log is a Merkle tree (``gateway.log.tree``): the writer keeps a ``merkle.RightEdge`` per
tree, restored at start from the stored hashes, appends one leaf per entry (one SHA-256 plus
one per completed subtree, two on average) and stores only the leaf and every 8th level: it
never re-hashes history. Checkpoints are C2SP signed notes (``<box>/<customer>``, key name =
origin), stored verbatim. Opening a database claims it and closes what a crash or 0.1.0 left
open (``gateway.log.opening``); a key rotation is ``gateway.log.key_rotation``.

Tree edges and id caches (``gateway.log.ids``) live in memory; changes made inside the open
transaction are kept apart until ``committed()`` and thrown away by ``rolled_back()``, which
reloads from the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from gateway.errors import EntryInvalid
from gateway.log.chain import GATEWAY_CHAIN, content_commitment, keyed_salt, keyed_source
from gateway.log.entry import (
    OUTCOMES,
    AppendedEntry,
    Checkpoint,
    EntryDraft,
    body_key,
    body_of,
    check_draft,
    us_from_at,
)
from gateway.log.forget import forget, scrub
from gateway.log.ids import StoredIds
from gateway.log.jcs import canonical
from gateway.log.key_rotation import rotate_key
from gateway.log.keys import Signer
from gateway.log.leaf import entry_leaf, tree_origin
from gateway.log.merkle import RightEdge
from gateway.log.note import Checkpoint as NoteCheckpoint
from gateway.log.note import sign_note
from gateway.log.notices import erasure_draft, parse_subject
from gateway.log.opening import Unsealed, claim, close_tail
from gateway.log.retention import compact, drop_content
from gateway.log.stored import note_signature
from gateway.log.tree import open_tree, stored_levels

__all__ = ["LogWriter"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LogWriter:
    """Appends entries, signs checkpoints, forgets subjects, rotates keys."""

    def __init__(self, conn: sqlite3.Connection, signer: Signer, origin: str) -> None:
        self._conn = conn
        self.origin = origin
        self._signer = signer
        # Trees this instance handed over (gateway/log/transfer.py): nothing more is appended
        # to them here, whatever asks; the handover and the start fill it in.
        self.closed: set[str] = set()
        self._pending_signer: Signer | None = None
        self._stale = False  # rolled back and not yet read again (``rolled_back``)
        began = not conn.in_transaction
        claim(conn, signer, origin)
        if began and conn.in_transaction:
            conn.commit()
        if not conn.in_transaction:
            # An erasure whose scrub a reader blocked left old pages in the WAL: empty it at
            # every start, when no reader of this process holds it yet.
            self.scrub()
        self._load()
        if not conn.in_transaction:
            close_tail(conn, self)

    # -- state ---------------------------------------------------------------------------
    def _load(self) -> None:
        # Read everything first and change nothing until all of it is read: a read that fails
        # (a disk failing after a failed COMMIT) leaves the state as it was, never half of it.
        conn = self._conn
        chains: dict[str, int] = dict(conn.execute("SELECT name, id FROM chains"))
        ids = StoredIds(conn)
        edges: dict[int, RightEdge] = {}
        bases: dict[int, int] = {}
        legacy: dict[int, tuple[int, bytes]] = {}
        signed: dict[int, int] = {}
        for chain_id in chains.values():
            tree = open_tree(conn, chain_id, self._signer.key_id)
            bases[chain_id] = tree.info.base
            edges[chain_id] = tree.edge
            signed[chain_id] = tree.signed
            if tree.info.legacy_head is not None:
                legacy[chain_id] = (tree.info.base, tree.info.legacy_head)
        top = conn.execute(
            "SELECT max(coalesce((SELECT max(seq) FROM entries), 0),"
            " coalesce((SELECT max(seq) FROM checkpoints), 0))"
        ).fetchone()[0]
        # Entry times only move forward: the floor is the newest time already committed (by
        # seq, the order entries were written; a log from before this rule may have dips).
        newest = conn.execute(
            "SELECT max(coalesce((SELECT at FROM entries ORDER BY seq DESC LIMIT 1), 0),"
            " coalesce((SELECT at FROM checkpoints ORDER BY seq DESC LIMIT 1), 0))"
        ).fetchone()[0]
        self._chains = chains
        self._chain_names = {v: k for k, v in chains.items()}
        self._ids = ids
        self._edges = edges
        self._bases = bases
        self._legacy = legacy
        self._signed = signed
        self._next_seq = int(top) + 1
        self._last_us = int(newest)
        self._last_at: tuple[int, datetime] = (0, _EPOCH)  # (µs, as a datetime) for last_at
        self._forget_pending()
        self._stale = False

    def _forget_pending(self) -> None:
        """Nothing pending: the next transaction starts from the committed state."""
        self._pending: dict[int, RightEdge] = {}
        self._pending_signed: dict[int, int] = {}
        self._pending_seq = self._next_seq
        self._pending_last_us = self._last_us

    def committed(self) -> None:
        """The caller committed: the transaction's tree edges become current."""
        if self._stale:
            self._pending_signer = None  # a rotation reads back first: none can be pending
            return  # the transaction wrote nothing of the log (each write reads back first)
        self._edges.update(self._pending)
        self._signed.update(self._pending_signed)
        self._next_seq = self._pending_seq
        self._last_us = self._pending_last_us
        if self._pending_signer is not None:
            self._signer = self._pending_signer
        self._pending_signer = None
        self._forget_pending()

    def reload(self) -> None:
        """Rows were added in the open transaction behind the writer's back (a tree adopted
        from another instance, ``gateway.log.transfer``): read ids and tree heads again."""
        self._stale = True  # until read whole, as after a rollback
        self._load()

    def rolled_back(self) -> None:
        """The caller rolled back: forget the transaction and reload heads and ids. Until they
        are read back whole, the writer is stale: a failed reading (a disk failing the COMMIT and
        then the read) leaves ids, chains and edges of rows that no longer exist, and the next
        use reads again (``_fresh``) instead of writing from them."""
        self._pending_signer = None
        self._forget_pending()  # read meanwhile (a handover's checks), the committed state answers
        self._stale = True
        self._load()

    def _fresh(self) -> None:
        if self._stale:
            self._load()

    @property
    def last_at(self) -> datetime | None:
        """The newest time a committed entry or checkpoint carries; None for an empty log.
        Nothing is recorded earlier, and decisions are not taken at an earlier time."""
        last_us = self._last_us
        if not last_us:
            return None
        # Asked by the gateway's clock for every batch; it changes only with a commit.
        cached = self._last_at
        if cached[0] != last_us:
            cached = self._last_at = (last_us, _EPOCH + timedelta(microseconds=last_us))
        return cached[1]

    def _forward(self, at_us: int) -> int:
        """``at_us``, or the newest time already written if the clock says earlier."""
        at_us = max(at_us, self._pending_last_us)
        self._pending_last_us = at_us
        return at_us

    @property
    def signer(self) -> Signer:
        return self._pending_signer or self._signer

    def head(self, customer: str | None) -> tuple[int, bytes]:
        """(entries, root hash) of a log as of the open transaction; entries counts a sealed
        0.1.0 chain's entries too (the next entry's ``idx``)."""
        name = GATEWAY_CHAIN if customer is None else customer
        chain_id = self._chains.get(name)
        if chain_id is None:
            return 0, RightEdge().root()
        edge = self._edge(chain_id)
        return self._bases[chain_id] + edge.size, edge.root()

    def tree_size(self, customer: str | None) -> int:
        """Leaves in the log's tree as of the open transaction (what its checkpoints count)."""
        chain_id = self._chains.get(GATEWAY_CHAIN if customer is None else customer)
        return 0 if chain_id is None else self._edge(chain_id).size

    def unsigned(self) -> int:
        """Committed entries not yet covered by their tree's last signed checkpoint: the
        checkpoint loop asks this to know whether there is anything to sign. Only committed
        state is read (a tuple copy first), so asking from another thread sees a past state,
        never a torn one: at worst a signature waits for the next tick."""
        edges = tuple(self._edges.items())
        signed = dict(self._signed)
        return sum(max(0, edge.size - signed.get(cid, 0)) for cid, edge in edges)

    def _edge(self, chain_id: int) -> RightEdge:
        found = self._pending.get(chain_id)
        return found if found is not None else self._edges[chain_id]

    def _edge_for_write(self, chain_id: int) -> RightEdge:
        found = self._pending.get(chain_id)
        if found is None:
            current = self._edges[chain_id]
            found = self._pending[chain_id] = RightEdge(current.size, current.hashes)
        return found

    def origin_of(self, chain: str) -> str:
        """The C2SP origin of a log, also its checkpoints' key name."""
        return tree_origin(self.origin, chain)

    def log_names(self) -> list[str]:
        """Every log's name in the order the logs were created, the box's own log among them
        (created in the open transaction if it has no entry yet)."""
        self._chain_id(GATEWAY_CHAIN)
        return [self._chain_names[c] for c in sorted(self._chain_names)]

    def unsealed(self) -> list[Unsealed]:
        """Chains left by 0.1.0 whose tree has no entry yet, so not its seal either."""
        return [
            (self._chain_names[chain_id], base, head)
            for chain_id, (base, head) in self._legacy.items()
            if self._edge(chain_id).size == 0
        ]

    # -- ids -----------------------------------------------------------------------------
    def _chain_id(self, name: str) -> int:
        found = self._chains.get(name)
        if found is None:
            cur = self._conn.execute("INSERT INTO chains (name) VALUES (?)", (name,))
            found = int(cur.lastrowid or 0)
            self._conn.execute(
                "INSERT INTO trees (chain_id, base, legacy_head, first_key) VALUES (?, 0, NULL, ?)",
                (found, self.signer.key_id),
            )
            self._chains[name] = found
            self._chain_names[found] = name
            self._edges[found] = RightEdge()
            self._bases[found] = 0
            self._signed[found] = 0
        return found

    # -- appending -----------------------------------------------------------------------
    def append(self, drafts: Sequence[EntryDraft]) -> list[AppendedEntry]:
        """Insert ``drafts`` in the caller's open transaction (never commits)."""
        self._fresh()
        rows: list[tuple[object, ...]] = []
        contents: list[tuple[int, int | None, bytes | None]] = []
        hashes: list[tuple[int, int, int, bytes]] = []
        appended: list[AppendedEntry] = []
        seq = self._pending_seq
        ids = self._ids
        bodies = ids.body_keys
        closed = self.closed
        # The drafts of one batch carry one decision time, the same object: convert it once,
        # and raise it to the newest time written once (``_forward``: for the same time again
        # it answers the same).
        last_at: datetime | None = None
        at_us = 0
        # Each log the batch writes in: its id, its tree's edge for this transaction and its
        # base, looked up at its first draft (the batch's drafts are mostly one customer's).
        trees: dict[str, tuple[int, RightEdge, int]] = {}
        for draft in drafts:
            check_draft(draft)
            chain = draft.chain
            if closed and chain in closed:
                raise EntryInvalid(
                    "customer",
                    f"the log of {chain!r} was handed over to another instance; this instance "
                    "writes nothing more in it",
                )
            tree = trees.get(chain)
            if tree is None:
                chain_id = self._chain_id(chain)
                tree = trees[chain] = (
                    chain_id,
                    self._edge_for_write(chain_id),
                    self._bases[chain_id],
                )
            chain_id, edge, base = tree
            index = edge.size
            size = base + index  # the entry's idx (its chain position)
            device_id = None if draft.device is None else ids.atom(draft.device)
            subject = device_id or 0
            key = draft.shape or body_key(draft)
            found = bodies.get(key)
            if found is None:
                names = ids.names(chain_id, subject, draft)
                replaced = None if draft.supersedes is None else self._index_of(draft, chain_id)
                found = ids.body(canonical(body_of(draft, names, replaced)))
                bodies.put(key, found)
            body_id, digest = found
            recipient_id = None if draft.recipient is None else ids.atom(draft.recipient)
            at = draft.at
            if at is not last_at:
                last_at, at_us = at, self._forward(us_from_at(at))
            commitment: bytes | None = None
            states = ids.keyed(chain_id, subject)  # the subject key, ready to hash under
            source = keyed_source(states, draft.source_digest)
            if draft.topic is not None or draft.content is not None:
                salt = keyed_salt(states, chain, size)
                commitment = content_commitment(salt, draft.topic, draft.content)
                topic_id = (
                    None if draft.topic is None else ids.topic(chain_id, subject, draft.topic)
                )
                contents.append((seq, topic_id, draft.content))
            digest_e = entry_leaf(index, at_us, digest, source, commitment)
            completed = edge.append(digest_e)
            if len(completed) > 8:  # a subtree of 256 or more leaves was completed
                hashes += [(chain_id, lv, i, h) for lv, i, h in stored_levels(completed)]
            rows.append(
                (
                    seq,
                    chain_id,
                    size,
                    at_us,
                    body_id,
                    device_id,
                    recipient_id,
                    OUTCOMES[draft.outcome],
                    source,
                    commitment,
                    digest_e,
                )
            )
            appended.append(AppendedEntry(seq, chain, size, digest_e))
            seq += 1
        self._conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        if contents:
            self._conn.executemany("INSERT INTO content VALUES (?, ?, ?)", contents)
        if hashes:
            self._conn.executemany("INSERT INTO tree_hashes VALUES (?, ?, ?, ?)", hashes)
        self._pending_seq = seq
        return appended

    def checkpoint(self, now: datetime) -> list[Checkpoint]:
        """Sign a C2SP checkpoint of every tree that grew since its last one.

        The note is stored verbatim (``checkpoints.note``); ``size`` there is the chain
        position (``base`` + tree size) like every other index column, the note's own size
        line is the tree size."""
        self._fresh()
        at_us = self._forward(us_from_at(now))
        signed_at = now if at_us == us_from_at(now) else _EPOCH + timedelta(microseconds=at_us)
        signer = self.signer
        made: list[Checkpoint] = []
        rows: list[tuple[object, ...]] = []
        for chain_id, name in self._chain_names.items():
            edge = self._edge(chain_id)
            signed = self._pending_signed.get(chain_id, self._signed[chain_id])
            if edge.size <= signed:
                continue
            root = edge.root()
            origin = self.origin_of(name)
            note = sign_note(
                NoteCheckpoint(origin, edge.size, root).text, [signer.note_signer(origin)]
            )
            sig = note_signature(note)
            size = self._bases[chain_id] + edge.size
            rows.append(
                (chain_id, size, root, at_us, signer.key_id, sig, self._pending_seq - 1, note)
            )
            self._pending_signed[chain_id] = edge.size
            made.append(Checkpoint(origin, name, size, root, signed_at, signer.key_id, sig))
        if rows:
            self._conn.executemany(
                "INSERT INTO checkpoints (chain_id, size, head, at, key_id, signature, seq, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return made

    # -- forgetting ----------------------------------------------------------------------
    def erase_subject(
        self,
        subject: str,
        now: datetime,
        requested_by: str,
        *,
        text_de: str | None = None,
        text_en: str | None = None,
    ) -> AppendedEntry:
        """Destroy the personal data of ``customer`` or ``customer/device`` (``gateway.log.forget``:
        content, topics, names documents, subject keys; every tree still verifies) and append a
        signed ``erasure`` entry saying what was erased, when and at whose request. After
        committing, call ``scrub()`` so no old page keeps a copy.
        """
        self._fresh()
        chain, device = parse_subject(subject)
        chain_id = self._chains.get(chain)
        erased = 0
        if chain_id is not None:
            device_id = None if device is None else self._ids.atom(device)
            erased = forget(self._conn, chain_id, device_id)
            self._ids.forget_subject(chain_id, device_id)
        draft = erasure_draft(subject, now, requested_by, erased, text_de=text_de, text_en=text_en)
        return self.append([draft])[0]

    def _index_of(self, draft: EntryDraft, chain_id: int) -> int | None:
        """The tree index (SPEC.md: leaf index, its tree's ``base`` off the stored position) of
        the entry ``draft`` supersedes, in its own log; None when it is not in the tree (dropped
        by compaction, or before the tree of a log upgraded from 0.1.0): then the body names
        none."""
        found = self._conn.execute(
            "SELECT idx FROM entries WHERE seq = ? AND chain_id = ?", (draft.supersedes, chain_id)
        ).fetchone()
        index = None if found is None else int(found[0]) - self._bases[chain_id]
        return index if index is not None and index >= 0 else None

    def scrub(self) -> bool:
        """After an erasure commits: copy the WAL into the database and truncate it.

        Returns False when a reader kept the checkpoint from finishing (call again later).
        """
        return scrub(self._conn)

    # -- keys ----------------------------------------------------------------------------
    def rotate_key(self, new_signer: Signer, now: datetime) -> AppendedEntry:
        """Replace the signing key in every log (``gateway.log.key_rotation``), in the caller's
        open transaction; the new key signs from the commit on. Returns the box's own log's
        rotation entry."""
        self._fresh()
        entry = rotate_key(self._conn, self, new_signer, now)
        self._pending_signer = new_signer
        return entry

    def compact(self, older_than: datetime, *, chains: Sequence[str] | None = None) -> int:
        """Drop entries older than ``older_than`` behind a signed checkpoint (see retention),
        in ``chains`` (customer names; every chain when None)."""
        self._fresh()
        dropped = compact(self._conn, older_than, chains=chains)
        if dropped:
            self._load()  # ids and bodies may have been collected
        return dropped

    def drop_content(self, customer: str, older_than: datetime) -> tuple[int, int]:
        """Delete the payloads and topics of ``customer``'s entries dated before ``older_than``
        (see retention); returns (content rows, topics) deleted."""
        self._fresh()
        found = drop_content(self._conn, customer, older_than)
        if found[1]:
            self._ids.forget_topics()
        return found
