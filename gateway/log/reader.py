"""The one reader of the log: every query on the log's tables outside the writer and the verifier.

A ``Reader`` is synchronous and owns one read-only connection (``mode=ro``, ``query_only``; WAL
lets it read while the writer writes); use it from one thread at a time (the TUI's worker thread,
the report and bundle commands). ``LogReader`` is the same reader for asyncio: every call runs on
the reader's own thread.

Bound to a customer (``customer=``), a reader never returns another customer's rows: every
statement on ``entries``, ``checkpoints``, ``bodies``, ``content`` and ``subject_keys`` carries
the restriction to that customer's chain, in SQL, whatever filter the caller passes. A customer's
view stands on this, not on the UI.

Pages are keyset-paginated by ``seq`` (never an OFFSET over the whole log); filters use the
entries' indexes on chain, device and recipient; bodies and texts repeat, so they are read once
and kept. What comes back is typed: the frozen dataclasses of ``gateway.log.results``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.errors import LogError
from gateway.log.chain import GATEWAY_CHAIN, genesis_hash
from gateway.log.entry import OUTCOMES, at_from_us, us_from_at
from gateway.log.keys import PublicKey, fingerprint
from gateway.log.results import (
    Body,
    CheckpointInfo,
    EntryDetail,
    EntryFacts,
    EntryFilter,
    EntryLine,
    EntryRow,
    Match,
    RecipientCount,
    ReportData,
    Stats,
)
from gateway.log.verify import (
    CheckpointRecord,
    EntryProof,
    checkpoint_valid,
    entry_proof,
    prove_entry,
)

__all__ = ["MAX_WALK", "LogReader", "Reader"]  # its result types: gateway.log.results

T = TypeVar("T")

OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}
MAX_WALK = 500_000  # entries walked to a checkpoint before giving up on "head matches"
_LINE = "seq, at, chain_id, idx, body_id, device_id, recipient_id, outcome"


def _fold(value: object) -> str | None:
    return None if value is None else str(value).casefold()


def _line(r: Sequence[Any], hit: bool = False) -> EntryLine:
    return EntryLine(
        seq=int(r[0]),
        at_us=int(r[1]),
        chain_id=int(r[2]),
        index=int(r[3]),
        body_id=int(r[4]),
        device_id=None if r[5] is None else int(r[5]),
        recipient_id=None if r[6] is None else int(r[6]),
        outcome=OUTCOME_NAMES.get(r[7]),
        hit=hit,
    )


class Reader:
    """A synchronous, read-only view of the log database, optionally bound to one customer."""

    def __init__(self, conn: sqlite3.Connection, path: Path, customer: str | None) -> None:
        self._conn = conn
        self.path = path
        self.customer = customer
        self.origin = ""
        self._bodies: dict[int, Body] = {}
        self._last_body = 0
        self._atoms: dict[int, str] = {}
        self._keys: dict[bytes, PublicKey] = {}

    @classmethod
    def open(cls, path: str | Path, *, customer: str | None = None) -> Reader:
        path = Path(path)
        if not path.exists():
            raise LogError(f"{path}: no log database here (is the path right?)")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.create_function("fold", 1, _fold, deterministic=True)
            conn.execute("PRAGMA query_only=ON")
            row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        except sqlite3.Error as exc:
            raise LogError(f"{path}: cannot read the log database read-only: {exc}") from exc
        reader = cls(conn, path, customer)
        reader.origin = "" if row is None else str(row[0])
        return reader

    @classmethod
    def over(cls, conn: sqlite3.Connection, path: Path, *, customer: str | None = None) -> Reader:
        """Read on a caller's connection, inside its transaction (an erasure counts what it is
        about to delete in the same transaction that deletes it). Not closed by the reader."""
        reader = cls(conn, path, customer)
        row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        reader.origin = "" if row is None else str(row[0])
        return reader

    def close(self) -> None:
        self._conn.close()

    # -- the customer restriction ------------------------------------------------------
    def _own(self, column: str = "chain_id") -> tuple[str, list[object]]:
        """The SQL condition restricting ``column`` (a chain id) to the bound customer."""
        if self.customer is None:
            return "1", []
        return f"{column} = (SELECT id FROM chains WHERE name = ?)", [self.customer]

    def _mine(self, doc: dict[str, Any]) -> bool:
        return self.customer is None or (doc.get("customer") or GATEWAY_CHAIN) == self.customer

    # -- names, bodies, texts ----------------------------------------------------------
    def chain_names(self) -> dict[int, str]:
        own, params = self._own("id")
        return {
            int(i): str(n)
            for i, n in self._conn.execute(f"SELECT id, name FROM chains WHERE {own}", params)
        }

    def chain_id(self, customer: str) -> int | None:
        """The id of ``customer``'s chain (None: no entry of theirs yet, or not this reader's)."""
        if self.customer is not None and customer != self.customer:
            return None
        row = self._conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
        return None if row is None else int(row[0])

    def atom(self, atom_id: int | None) -> str | None:
        """A device or recipient name by id (ids come from this reader's own rows)."""
        if atom_id is None:
            return None
        found = self._atoms.get(atom_id)
        if found is None:
            self._atoms = {
                int(i): str(v) for i, v in self._conn.execute("SELECT id, value FROM atoms")
            }
            found = self._atoms.get(atom_id, f"#{atom_id}")
        return found

    def atom_id(self, value: str) -> int | None:
        row = self._conn.execute("SELECT id FROM atoms WHERE value = ?", (value,)).fetchone()
        return None if row is None else int(row[0])

    def texts(self, digests: Iterable[bytes]) -> dict[bytes, str]:
        """Explanation texts by digest (texts are shared wording, not any customer's data)."""
        listed = list(dict.fromkeys(digests))
        found: dict[bytes, str] = {}
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for digest, text in self._conn.execute(
                f"SELECT digest, text FROM texts WHERE digest IN ({marks})", chunk
            ):
                found[bytes(digest)] = str(text)
        return found

    def new_bodies(self) -> list[Body]:
        """Bodies stored since the last call (the bound customer's only), texts resolved."""
        rows = self._conn.execute(
            "SELECT id, digest, doc FROM bodies WHERE id > ? ORDER BY id", (self._last_body,)
        ).fetchall()
        if not rows:
            return []
        self._last_body = max(self._last_body, int(rows[-1][0]))
        docs = [(int(i), bytes(d), orjson.loads(raw)) for i, d, raw in rows]
        docs = [(i, d, doc) for i, d, doc in docs if self._mine(doc)]
        wanted = [
            bytes.fromhex(doc[f"text_{lang}"])
            for _, _, doc in docs
            for lang in ("de", "en")
            if doc.get(f"text_{lang}")
        ]
        texts = self.texts(wanted)
        out = []
        for body_id, digest, doc in docs:
            body_texts = {
                lang: texts.get(bytes.fromhex(doc.get(f"text_{lang}") or ""), "")
                for lang in ("de", "en")
            }
            body = Body(id=body_id, digest=digest, doc=doc, texts=body_texts)
            self._bodies[body_id] = body
            out.append(body)
        return out

    def body(self, body_id: int) -> Body:
        found = self._bodies.get(body_id)
        if found is None:
            self.new_bodies()
            found = self._bodies.get(body_id)
            if found is None:
                raise LogError(
                    f"{self.path}: an entry refers to body {body_id}, which is not stored (or not this customer's); run `einblick verify`"
                )
        return found

    def bodies(self) -> list[Body]:
        """Every body of this reader's entries known so far (after taking in new ones)."""
        self.new_bodies()
        return list(self._bodies.values())

    # -- entries -----------------------------------------------------------------------
    def _match(self, table: str, matches: Sequence[Match]) -> tuple[str, list[object]]:
        column = "name" if table == "chains" else "value"
        ors: list[str] = []
        params: list[object] = []
        for m in matches:
            ors.append(
                f"(instr(fold({column}), ?) > 0 OR {column} IN (SELECT value FROM json_each(?)))"
            )
            params += [m.contains, orjson.dumps(list(m.exactly)).decode()]
        return f"SELECT id FROM {table} WHERE " + " OR ".join(ors), params

    def where(self, flt: EntryFilter | None, *, own: bool = True) -> tuple[str, list[object]]:
        """SQL conditions on ``entries`` for ``flt``, always within the bound customer."""
        clauses: list[str] = []
        params: list[object] = []
        if own and self.customer is not None:
            sql, p = self._own()
            clauses.append(sql)
            params += p
        if flt is not None:
            for column, table, matches in (
                ("device_id", "atoms", flt.devices),
                ("recipient_id", "atoms", flt.recipients),
                ("chain_id", "chains", flt.customers),
            ):
                if matches:
                    sql, p = self._match(table, matches)
                    clauses.append(f"{column} IN ({sql})")
                    params += p
            if flt.outcomes:
                clauses.append(f"outcome IN ({','.join('?' * len(flt.outcomes))})")
                params += [OUTCOMES.get(o, -1) for o in flt.outcomes]
            if flt.body_ids is not None:
                clauses.append("body_id IN (SELECT value FROM json_each(?))")
                params.append(orjson.dumps(sorted(flt.body_ids)).decode())
        return (" AND ".join(clauses) or "1"), params

    def latest_seq(self) -> int:
        own, params = self._own()
        row = self._conn.execute(f"SELECT max(seq) FROM entries WHERE {own}", params).fetchone()
        return 0 if row[0] is None else int(row[0])

    def count(
        self,
        flt: EntryFilter | None = None,
        *,
        lo: int = 0,
        hi: int | None = None,
        find: EntryFilter | None = None,
    ) -> int:
        """Entries passing ``flt`` (and ``find``) with ``lo <= seq`` (``< hi`` when given)."""
        where, params = self.where(flt)
        fwhere, fparams = self.where(find, own=False)
        sql = f"SELECT count(*) FROM entries WHERE seq >= ? AND {where} AND {fwhere}"
        args: list[object] = [lo, *params, *fparams]
        if hi is not None:
            sql += " AND seq < ?"
            args.append(hi)
        return int(self._conn.execute(sql, args).fetchone()[0])

    def marks(self, flt: EntryFilter | None, upto: int, stride: int) -> list[int]:
        """The seq of every ``stride``-th entry passing ``flt`` up to ``upto`` (a sparse index)."""
        where, params = self.where(flt)
        return [
            int(r[0])
            for r in self._conn.execute(
                "SELECT seq FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rn"
                f" FROM entries WHERE seq <= ? AND {where}) WHERE (rn - 1) % ? = 0",
                [upto, *params, stride],
            )
        ]

    def seqs(self, flt: EntryFilter | None, after: int, upto: int) -> list[int]:
        where, params = self.where(flt)
        return [
            int(r[0])
            for r in self._conn.execute(
                f"SELECT seq FROM entries WHERE seq > ? AND seq <= ? AND {where} ORDER BY seq",
                [after, upto, *params],
            )
        ]

    def lines(
        self,
        flt: EntryFilter | None,
        *,
        lo: int = 0,
        hi: int | None = None,
        limit: int = 200,
        skip: int = 0,
        newest_first: bool = False,
        find: EntryFilter | None = None,
    ) -> list[EntryLine]:
        """Up to ``limit`` entries with ``lo <= seq <= hi`` passing ``flt``, after skipping
        ``skip`` (at most a stride of the caller's sparse index); ``hit`` marks ``find``."""
        where, params = self.where(flt)
        hit_sql, hit_params = ("0", []) if find is None else self.where(find, own=False)
        sql = f"SELECT {_LINE}, ({hit_sql}) FROM entries WHERE seq >= ? AND {where}"
        args: list[object] = [*hit_params, lo, *params]
        if hi is not None:
            sql += " AND seq <= ?"
            args.append(hi)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ? OFFSET ?"
        args += [limit, skip]
        return [_line(r, bool(r[8])) for r in self._conn.execute(sql, args)]

    def neighbour(
        self, flt: EntryFilter | None, find: EntryFilter, origin: int, *, upto: int, forward: bool
    ) -> int | None:
        """The seq of the next (or previous) entry after ``origin`` passing both filters."""
        where, params = self.where(flt)
        fwhere, fparams = self.where(find, own=False)
        if forward:
            sql = f"SELECT seq FROM entries WHERE seq > ? AND seq <= ? AND {where} AND {fwhere} ORDER BY seq LIMIT 1"
            args: list[object] = [origin, upto, *params, *fparams]
        else:
            sql = f"SELECT seq FROM entries WHERE seq < ? AND {where} AND {fwhere} ORDER BY seq DESC LIMIT 1"
            args = [origin, *params, *fparams]
        found = self._conn.execute(sql, args).fetchone()
        return None if found is None else int(found[0])

    def first_seq_at(self, at_us: int) -> int:
        """The first seq whose time is at or after ``at_us`` (times rise with seq)."""
        bounds = self._conn.execute("SELECT min(seq), max(seq) FROM entries").fetchone()
        if bounds[0] is None:
            return 0
        lo, hi = int(bounds[0]), int(bounds[1]) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = self._conn.execute(
                "SELECT seq, at FROM entries WHERE seq >= ? ORDER BY seq LIMIT 1", (mid,)
            ).fetchone()
            if row is None or row[1] >= at_us:
                hi = mid
            else:
                lo = int(row[0]) + 1
        return lo

    def recipient_counts(
        self, since_us: int, bucket_us: int, first_seq: int = 0
    ) -> list[RecipientCount]:
        """Entries to a recipient at or after ``since_us``, counted per recipient, body and
        ``bucket_us``-wide time bucket (``first_seq`` bounds the scan from below)."""
        own, params = self._own()
        rows = self._conn.execute(
            "SELECT recipient_id, body_id, (at - ?) / ?, count(*) FROM entries"
            f" WHERE seq >= ? AND at >= ? AND recipient_id IS NOT NULL AND {own}"
            " GROUP BY 1, 2, 3",
            [since_us, bucket_us, first_seq, since_us, *params],
        ).fetchall()
        return [RecipientCount(int(r), int(b), int(k), int(n)) for r, b, k, n in rows]

    def body_counts(
        self, since_us: int, floor_seq: int = 0
    ) -> list[tuple[int, int | None, str | None, int]]:
        """(body id, recipient id, outcome, count) for entries at or after ``since_us``."""
        own, params = self._own()
        return [
            (int(b), None if r is None else int(r), OUTCOME_NAMES.get(o), int(n))
            for b, r, o, n in self._conn.execute(
                "SELECT body_id, recipient_id, outcome, count(*) FROM entries"
                f" WHERE seq > ? AND at >= ? AND {own} GROUP BY 1, 2, 3",
                [floor_seq, since_us, *params],
            )
        ]

    def checkpoint_floor(self, before_us: int) -> int:
        """The highest seq of a checkpoint signed before ``before_us`` (0: none)."""
        row = self._conn.execute(
            "SELECT coalesce(max(seq), 0) FROM checkpoints WHERE at < ?", (before_us,)
        ).fetchone()
        return int(row[0])

    # -- one entry ---------------------------------------------------------------------
    def entry(self, seq: int) -> EntryFacts | None:
        """Everything stored about entry ``seq``; None if absent or not this reader's."""
        own, params = self._own("e.chain_id")
        found = self._conn.execute(
            "SELECT e.seq, e.at, e.chain_id, e.idx, e.body_id, e.device_id, e.recipient_id,"
            " e.outcome, e.source, e.commitment, e.hash, ch.name, c.seq IS NOT NULL, c.payload, t.topic"
            " FROM entries e JOIN chains ch ON ch.id = e.chain_id"
            " LEFT JOIN content c ON c.seq = e.seq LEFT JOIN topics t ON t.id = c.topic_id"
            f" WHERE e.seq = ? AND {own}",
            [seq, *params],
        ).fetchone()
        if found is None:
            return None
        return EntryFacts(
            line=_line(found),
            chain=str(found[11]),
            source=bytes(found[8]),
            commitment=None if found[9] is None else bytes(found[9]),
            entry_hash=bytes(found[10]),
            content_held=bool(found[12]),
            content=None if found[13] is None else bytes(found[13]),
            topic=None if found[14] is None else str(found[14]),
        )

    def public_keys(self) -> dict[bytes, PublicKey]:
        if not self._keys:
            self._keys = {
                bytes(k): PublicKey(bytes(p))
                for k, p in self._conn.execute("SELECT key_id, public FROM keys")
            }
        return self._keys

    def newest_key_fingerprint(self) -> str | None:
        row = self._conn.execute("SELECT key_id FROM keys ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else fingerprint(bytes(row[0]))

    def checkpoint_rows(
        self, *, chain_id: int | None = None, covering: int | None = None, limit: int = 100
    ) -> list[tuple[int, CheckpointRecord]]:
        """(chain id, checkpoint) newest first; with ``covering``, the first covering that index."""
        where, params = [self._own()[0]], list(self._own()[1])
        if chain_id is not None:
            where.append("chain_id = ?")
            params.append(chain_id)
        if covering is not None:
            where.append("size > ?")
            params.append(covering)
        order = "size ASC, id ASC" if covering is not None else "id DESC"
        rows = self._conn.execute(
            "SELECT chain_id, size, head, at, key_id, signature FROM checkpoints"
            f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
        return [
            (int(c), CheckpointRecord(int(s), bytes(h), int(a), bytes(k), bytes(sig)))
            for c, s, h, a, k, sig in rows
        ]

    def proof(self, facts: EntryFacts) -> EntryProof:
        """The entry's link and its first checkpoint, checked by ``gateway.log.verify``."""
        line = facts.line
        in_tree = entry_proof(self._conn, self.origin, line.chain_id, line.index)
        if in_tree is not None:  # the tree's own proof, from the verifier
            return in_tree
        prev_row = self._conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
            (line.chain_id, line.seq),
        ).fetchone()
        prev: bytes | None
        if prev_row is not None:
            prev = bytes(prev_row[0])
        elif line.index == 0:
            prev = genesis_hash(self.origin, facts.chain)
        else:  # compacted: the anchor checkpoint holds the head before this entry
            anchor = self._conn.execute(
                "SELECT head FROM checkpoints WHERE chain_id = ? AND size = ?",
                (line.chain_id, line.index),
            ).fetchone()
            prev = None if anchor is None else bytes(anchor[0])
        found = self.checkpoint_rows(chain_id=line.chain_id, covering=line.index, limit=1)
        checkpoint = found[0][1] if found else None
        first = (
            line.index,
            line.at_us,
            self.body(line.body_id).digest,
            facts.source,
            facts.commitment,
            facts.entry_hash,
        )
        entries: list[tuple[int, int, bytes, bytes, bytes | None, bytes]] = [first]
        if checkpoint is not None and checkpoint.size - line.index <= MAX_WALK:
            entries += [
                (
                    int(i),
                    int(a),
                    self.body(int(b)).digest,
                    bytes(s),
                    None if c is None else bytes(c),
                    bytes(h),
                )
                for i, a, b, s, c, h in self._conn.execute(
                    "SELECT idx, at, body_id, source, commitment, hash FROM entries"
                    " WHERE chain_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (line.chain_id, line.seq, checkpoint.size - line.index - 1),
                )
            ]
        return prove_entry(self.origin, facts.chain, prev, entries, checkpoint, self.public_keys())

    # -- the typed views of the async API (tests, front-ends) ----------------------------
    def filter_for(
        self,
        *,
        customer: str | None = None,
        device: str | None = None,
        recipient: str | None = None,
        outcome: str | None = None,
        text: str | None = None,
    ) -> EntryFilter:
        """Exact-id filters, and ``text`` found in either explanation (case-insensitive)."""
        body_ids = None
        if text is not None:
            needle = text.casefold()
            body_ids = frozenset(
                b.id for b in self.bodies() if any(needle in t.casefold() for t in b.texts.values())
            )
        return EntryFilter(
            devices=() if device is None else (Match(exactly=(device,)),),
            recipients=() if recipient is None else (Match(exactly=(recipient,)),),
            customers=() if customer is None else (Match(exactly=(customer,)),),
            outcomes=() if outcome is None else (outcome,),
            body_ids=body_ids,
        )

    def row(self, line: EntryLine) -> EntryRow:
        body = self.body(line.body_id)
        chains = self.chain_names()
        return EntryRow(
            seq=line.seq,
            at=at_from_us(line.at_us),
            customer=chains.get(line.chain_id, f"#{line.chain_id}"),
            index=line.index,
            kind=body.kind,
            device=self.atom(line.device_id),
            recipient=self.atom(line.recipient_id),
            outcome=line.outcome,
            text_de=body.texts["de"],
            text_en=body.texts["en"],
        )

    def page(
        self,
        flt: EntryFilter,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 200,
    ) -> list[EntryRow]:
        """Up to ``limit`` entries: newest first below ``before``, or oldest first above ``after``."""
        lines = self.lines(
            flt,
            lo=0 if after is None else after + 1,
            hi=None if before is None else before - 1,
            limit=limit,
            newest_first=not (after is not None and before is None),
        )
        return [self.row(line) for line in lines]

    def checkpoint_infos(
        self, *, customer: str | None = None, covering: int | None = None, limit: int = 100
    ) -> list[CheckpointInfo]:
        """Checkpoints, newest first; with ``covering``, the first one covering that index."""
        chain_id = None
        if customer is not None:
            chain_id = self.chain_id(customer)
            if chain_id is None:
                return []
        chains = self.chain_names()
        out = []
        for cid, cp in self.checkpoint_rows(chain_id=chain_id, covering=covering, limit=limit):
            name = chains.get(cid, f"#{cid}")
            # The signature alone, by the verifier's own check.
            valid = checkpoint_valid(self._conn, self.origin, cid, name, cp)
            out.append(
                CheckpointInfo(
                    name,
                    cp.size,
                    cp.head,
                    at_from_us(cp.at),
                    fingerprint(cp.key_id),
                    valid,
                )
            )
        return out

    def detail(self, seq: int) -> EntryDetail:
        facts = self.entry(seq)
        if facts is None:
            raise LogError(
                f"log entry {seq}: not found (compacted, never written, or another customer's)"
            )
        row = self.row(facts.line)
        doc = self.body(facts.line.body_id).doc
        cps = self.checkpoint_infos(customer=row.customer, covering=row.index, limit=1)
        return EntryDetail(
            row=row,
            grant=doc["grant"],
            policy_version=doc["policy_version"],
            purpose=dict(doc["purpose"]),
            legal_basis=doc["legal_basis"],
            shared=tuple(doc["shared"]),
            altered=tuple((a[0], a[1], a[2]) for a in doc["altered"]),
            withheld=tuple(doc["withheld"]),
            reason=doc["reason"],
            reason_params=dict(doc["reason_params"]),
            subject=doc["subject"],
            topic=facts.topic,
            content=facts.content,
            source_digest=facts.source,
            commitment=facts.commitment,
            entry_hash=facts.entry_hash,
            checkpoint=cps[0] if cps else None,
        )

    def stats(self, since: datetime) -> Stats:
        """Messages and fields sent per recipient and outcome counts for entries at >= since."""
        # Entries arrive in time order give or take the batching; a checkpoint signed well
        # before ``since`` bounds the scan from below, so no index on time is needed.
        floor = self.checkpoint_floor(us_from_at(since - timedelta(seconds=60)))
        stats = Stats()
        for body_id, recipient_id, outcome, n in self.body_counts(us_from_at(since), floor):
            body = self.body(body_id)
            name = self.atom(recipient_id) or GATEWAY_CHAIN
            stats.outcomes[outcome or body.kind] += n
            if body.kind == "decision":
                stats.messages[name] += n
                if body.doc["outcome"] in ("shared", "altered"):
                    stats.fields_sent[name] += n * (
                        len(body.doc["shared"]) + len(body.doc["altered"])
                    )
        return stats

    def report_data(self, customer: str, since_us: int = 0) -> ReportData:
        """``customer``'s entries at or after ``since_us``, grouped for their report."""
        chain_id = self.chain_id(customer)
        groups: list[tuple[dict[str, Any], int, int, int]] = []
        singles: list[tuple[int, int, dict[str, Any]]] = []
        if chain_id is not None:
            bodies: dict[int, dict[str, Any]] = {}
            for body_id, count, first, last in self._conn.execute(
                "SELECT body_id, count(*), min(at), max(at) FROM entries"
                " WHERE chain_id = ? AND at >= ? GROUP BY body_id",
                (chain_id, since_us),
            ).fetchall():
                doc = self._conn.execute("SELECT doc FROM bodies WHERE id = ?", (body_id,))
                bodies[body_id] = orjson.loads(doc.fetchone()[0])
                groups.append((bodies[body_id], int(count), int(first), int(last)))
            rare = [i for i, b in bodies.items() if b["kind"] != "decision"]
            if rare:
                marks = ",".join("?" * len(rare))
                for seq, at, body_id in self._conn.execute(
                    f"SELECT seq, at, body_id FROM entries WHERE chain_id = ? AND at >= ?"
                    f" AND body_id IN ({marks}) ORDER BY seq",
                    (chain_id, since_us, *rare),
                ).fetchall():
                    singles.append((int(seq), int(at), bodies[body_id]))
        digests = [bytes.fromhex(b[lang]) for _, _, b in singles for lang in ("text_de", "text_en")]
        found = self.texts(digests)
        texts = {d.hex(): found.get(d, "") for d in digests}
        return ReportData(self.origin, chain_id is not None, tuple(groups), tuple(singles), texts)

    # -- what an erasure touches, what an audit compares ---------------------------------
    def held_content(self, chain_id: int, device_id: int | None = None) -> int:
        """Entries of the chain (of one device) whose personal content is still held."""
        where, params = "chain_id = ?", [chain_id]
        if device_id is not None:
            where += " AND device_id = ?"
            params.append(device_id)
        row = self._conn.execute(
            f"SELECT count(*) FROM content WHERE seq IN (SELECT seq FROM entries WHERE {where})",
            params,
        ).fetchone()
        return int(row[0])

    def recipients_sent(self, chain_id: int, device_id: int | None = None) -> set[str]:
        """Recipients that were ever sent (shared or altered) anything of the chain (device)."""
        sql = (
            "SELECT DISTINCT a.value FROM entries e JOIN atoms a ON a.id = e.recipient_id"
            " WHERE e.chain_id = ? AND e.outcome IN (?, ?)"
        )
        params = [chain_id, OUTCOMES["shared"], OUTCOMES["altered"]]
        if device_id is not None:
            sql += " AND e.device_id = ?"
            params.append(device_id)
        return {str(r[0]) for r in self._conn.execute(sql, params)}

    def subject_keys(self) -> list[bytes]:
        """The per-subject keys still held (the bound customer's only)."""
        own, params = self._own()
        return [
            bytes(k)
            for (k,) in self._conn.execute(f"SELECT key FROM subject_keys WHERE {own}", params)
        ]

    def entries_with_content(
        self,
    ) -> list[tuple[int, bytes, dict[str, Any], str | None, bytes | None]]:
        """(seq, source digest, body, topic, payload) of every entry in log order."""
        own, params = self._own("e.chain_id")
        return [
            (int(seq), bytes(source), orjson.loads(doc), topic, None if p is None else bytes(p))
            for seq, source, doc, topic, p in self._conn.execute(
                "SELECT e.seq, e.source, b.doc, t.topic, c.payload FROM entries e"
                " JOIN bodies b ON b.id = e.body_id LEFT JOIN content c ON c.seq = e.seq"
                f" LEFT JOIN topics t ON t.id = c.topic_id WHERE {own} ORDER BY e.seq",
                params,
            )
        ]


class LogReader:
    """A ``Reader`` for asyncio: each call runs on the reader's own thread (one connection,
    one thread, so calls are serialised and never block the event loop)."""

    def __init__(self, reader: Reader, pool: ThreadPoolExecutor) -> None:
        self.sync = reader
        self._pool = pool

    @property
    def origin(self) -> str:
        return self.sync.origin

    @classmethod
    async def open(cls, path: str | Path, *, customer: str | None = None) -> LogReader:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="einblick-log-reader")
        loop = asyncio.get_running_loop()
        try:
            reader = await loop.run_in_executor(pool, partial(Reader.open, path, customer=customer))
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(reader, pool)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the reader's thread (``fn`` may use ``self.sync``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    async def close(self) -> None:
        await self.run(self.sync.close)
        self._pool.shutdown(wait=True)

    async def latest_seq(self) -> int:
        return await self.run(self.sync.latest_seq)

    async def page(
        self,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 200,
        **filters: str | None,
    ) -> list[EntryRow]:
        """Up to ``limit`` entries: newest first below ``before``, or oldest first above
        ``after``; ``filters``: customer, device, recipient, outcome, text."""

        def run() -> list[EntryRow]:
            flt = self.sync.filter_for(**filters)
            return self.sync.page(flt, before=before, after=after, limit=limit)

        return await self.run(run)

    async def count(self, **filters: str | None) -> int:
        return await self.run(lambda: self.sync.count(self.sync.filter_for(**filters)))

    async def get(self, seq: int) -> EntryDetail:
        return await self.run(self.sync.detail, seq)

    async def checkpoints(
        self, *, customer: str | None = None, covering: int | None = None, limit: int = 100
    ) -> list[CheckpointInfo]:
        return await self.run(
            self.sync.checkpoint_infos, customer=customer, covering=covering, limit=limit
        )

    async def stats(self, since: datetime, *, customer: str | None = None) -> Stats:
        if customer is None:
            return await self.run(self.sync.stats, since)

        def run() -> Stats:  # a one-off reader bound to that customer, on this thread
            bound = Reader.open(self.sync.path, customer=customer)
            try:
                return bound.stats(since) if self.sync.customer in (None, customer) else Stats()
            finally:
                bound.close()

        return await self.run(run)
