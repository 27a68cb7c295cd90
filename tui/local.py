"""The local data source: the log database, read-only, and the gateway's control socket.

Reading without loading the log: a ``LocalView`` keeps, for its filter, the row count and the
seq of every ``STRIDE``-th matching row (a sparse index, 8 bytes per ``STRIDE`` rows, built by
one SQL scan when the filter changes). Row ``i`` is then one keyset query: start at the mark
before ``i`` and skip at most ``STRIDE - 1`` rows. New entries are taken in by seq
(``seq > last``), so a refresh costs what was committed since the last one.

Bodies (the repeated part of entries: device, recipient, outcome, purpose, texts) are few; they
are read once and kept, so a row costs one narrow ``entries`` row. Free-text filters match
bodies in Python and then select entries by body id.

All SQL runs on one worker thread that owns a read-only connection (``mode=ro``; WAL lets it
read while the gateway writes). Every statement carries the customer restriction when the
source is a customer view.
"""

from __future__ import annotations

import asyncio
import bisect
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.control import ControlError, request
from gateway.keys import PublicKey, fingerprint
from gateway.log.chain import checkpoint_message, entry_hash, genesis_hash
from gateway.log.entry import OUTCOMES, us_from_at
from policies.errors import PolicyError
from policies.loader import load_policy
from tui.model import (
    CheckpointProof,
    CustomerPolicy,
    Detail,
    GrantView,
    Names,
    Overview,
    RecipientStats,
    Row,
)
from tui.query import Query
from tui.source import SourceError

__all__ = ["STRIDE", "LocalSource", "LocalView", "summary_of"]

T = TypeVar("T")
STRIDE = 256
_OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}
BUCKETS = 48  # sparkline: 48 half-hours
MAX_WALK = 500_000  # entries walked to a checkpoint before giving up on "head matches"


def summary_of(text: str) -> str:
    """The first sentence (or line) of an explanation, for the one-line summary."""
    line = text.strip().split("\n", 1)[0]
    for stop in (". ", "; "):
        cut = line.find(stop)
        if cut > 0:
            return line[: cut + 1]
    return line


@dataclass(frozen=True, slots=True)
class _Body:
    id: int
    digest: bytes
    kind: str
    customer: str | None
    device: str | None
    recipient: str | None
    outcome: str | None
    purpose: Mapping[str, str]
    doc: Mapping[str, Any]
    texts: Mapping[str, str]
    summary: Mapping[str, str]
    haystack: str  # casefolded text the free-text filter searches


def _fold(value: object) -> str | None:
    return None if value is None else str(value).casefold()


class LocalSource:
    """``DataSource`` over the local SQLite log and the gateway's control socket."""

    def __init__(
        self,
        database: Path,
        *,
        customer: str | None = None,
        control_socket: Path | None = None,
        policies_dir: Path | None = None,
        names: Names | None = None,
    ) -> None:
        self.database = database
        self.customer = customer
        self.control_socket = control_socket
        self.policies_dir = policies_dir
        self.names = names or Names()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="einblick-tui-db")
        self._conn: sqlite3.Connection | None = None
        self._bodies: dict[int, _Body] = {}
        self._last_body = 0
        self._atoms: dict[int, str] = {}
        self._origin = ""
        self._keys: dict[bytes, bytes] = {}

    # -- plumbing ----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SourceError("the log database is not open")
        return self._conn

    async def open(self) -> None:
        if not self.database.exists():
            raise SourceError(f"no log database at {self.database}")
        await self._run(self._open)
        if self.policies_dir is not None:
            self.names = _merge_names(self.names, _names_from_files(self.policies_dir))

    def _open(self) -> None:
        uri = f"{self.database.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.create_function("fold", 1, _fold, deterministic=True)
            conn.execute("PRAGMA query_only=ON")
            row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read the log database {self.database}: {exc}") from exc
        self._conn = conn
        self._origin = "" if row is None else str(row[0])
        self._load_bodies()

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self.conn.close)
            self._conn = None
        self._pool.shutdown(wait=True)

    # -- caches (worker thread only) ---------------------------------------------------
    def _load_bodies(self) -> None:
        conn = self.conn
        rows = conn.execute(
            "SELECT id, digest, doc FROM bodies WHERE id > ? ORDER BY id", (self._last_body,)
        ).fetchall()
        if not rows:
            return
        wanted: set[bytes] = set()
        docs: list[tuple[int, bytes, dict[str, Any]]] = []
        for body_id, digest, raw in rows:
            doc = orjson.loads(raw)
            docs.append((int(body_id), bytes(digest), doc))
            for lang in ("de", "en"):
                if doc.get(f"text_{lang}"):
                    wanted.add(bytes.fromhex(doc[f"text_{lang}"]))
        texts: dict[bytes, str] = {}
        listed = list(wanted)
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for digest, text in conn.execute(
                f"SELECT digest, text FROM texts WHERE digest IN ({marks})", chunk
            ):
                texts[bytes(digest)] = str(text)
        for body_id, digest, doc in docs:
            body_texts = {
                lang: texts.get(bytes.fromhex(doc.get(f"text_{lang}") or ""), "")
                for lang in ("de", "en")
            }
            purpose = {str(k): str(v) for k, v in (doc.get("purpose") or {}).items()}
            device, recipient = doc.get("device"), doc.get("recipient")
            hay = [
                str(device or ""),
                self.names.device(device),
                str(recipient or ""),
                self.names.recipient(recipient),
                str(doc.get("customer") or ""),
                str(doc.get("kind") or ""),
                str(doc.get("outcome") or ""),
                str(doc.get("grant") or ""),
                *purpose.values(),
                *body_texts.values(),
                *doc.get("shared", ()),
                *doc.get("withheld", ()),
                *(a[0] for a in doc.get("altered", ())),
            ]
            self._bodies[body_id] = _Body(
                id=body_id,
                digest=digest,
                kind=str(doc.get("kind") or ""),
                customer=doc.get("customer"),
                device=device,
                recipient=recipient,
                outcome=doc.get("outcome"),
                purpose=purpose,
                doc=doc,
                texts=body_texts,
                summary={lang: summary_of(text) for lang, text in body_texts.items()},
                haystack="\n".join(hay).casefold(),
            )
        self._last_body = max(self._last_body, docs[-1][0])

    def _body(self, body_id: int) -> _Body:
        found = self._bodies.get(body_id)
        if found is None:
            self._load_bodies()
            found = self._bodies.get(body_id)
            if found is None:
                raise SourceError(f"log database: entry refers to body {body_id}, not stored")
        return found

    def _atom(self, atom_id: int) -> str:
        found = self._atoms.get(atom_id)
        if found is None:
            self._atoms = {
                int(i): str(v) for i, v in self.conn.execute("SELECT id, value FROM atoms")
            }
            found = self._atoms.get(atom_id, f"#{atom_id}")
        return found

    # -- SQL for a query ---------------------------------------------------------------
    def _restrict(self) -> tuple[list[str], list[object]]:
        if self.customer is None:
            return [], []
        return ["chain_id = (SELECT id FROM chains WHERE name = ?)"], [self.customer]

    def _ids_matching(
        self, table: str, values: Sequence[str], names: Mapping[str, str]
    ) -> tuple[str, list[object]]:
        """SQL selecting ids in ``table`` whose value or human name contains any of ``values``."""
        column = "name" if table == "chains" else "value"
        ors: list[str] = []
        params: list[object] = []
        for value in values:
            by_name = [key for key, name in names.items() if value in name.casefold()]
            ors.append(
                f"instr(fold({column}), ?) > 0 OR {column} IN (SELECT value FROM json_each(?))"
            )
            params += [value, orjson.dumps(by_name).decode()]
        return f"SELECT id FROM {table} WHERE " + " OR ".join(f"({o})" for o in ors), params

    def _where(self, q: Query | None, *, restrict: bool = True) -> tuple[str, list[object]]:
        clauses, params = self._restrict() if restrict else ([], [])
        if q is not None:
            if q.devices:
                sql, p = self._ids_matching("atoms", q.devices, self.names.devices)
                clauses.append(f"device_id IN ({sql})")
                params += p
            if q.recipients:
                sql, p = self._ids_matching("atoms", q.recipients, self.names.recipients)
                clauses.append(f"recipient_id IN ({sql})")
                params += p
            if q.customers:
                sql, p = self._ids_matching("chains", q.customers, self.names.customers)
                clauses.append(f"chain_id IN ({sql})")
                params += p
            if q.outcomes:
                clauses.append(f"outcome IN ({','.join('?' * len(q.outcomes))})")
                params += [OUTCOMES[o] for o in q.outcomes]
            if q.words:
                self._load_bodies()
                ids = [
                    b.id
                    for b in self._bodies.values()
                    if all(word in b.haystack for word in q.words)
                ]
                clauses.append("body_id IN (SELECT value FROM json_each(?))")
                params.append(orjson.dumps(ids).decode())
        return (" AND ".join(clauses) or "1"), params

    # -- the DataSource API ------------------------------------------------------------
    async def view(self, flt: Query) -> LocalView:
        view = LocalView(self, flt)
        await view.refresh()
        return view

    async def detail(self, seq: int) -> Detail | None:
        return await self._run(self._detail, seq)

    def _row(self, seq: int, at: int, body: _Body, hit: bool = False) -> Row:
        return Row(
            seq=seq,
            at_us=at,
            kind=body.kind,
            customer=body.customer,
            device=body.device,
            recipient=body.recipient,
            outcome=body.outcome,
            purpose=body.purpose,
            summary=body.summary,
            hit=hit,
        )

    def _detail(self, seq: int) -> Detail | None:
        conn = self.conn
        found = conn.execute(
            "SELECT e.seq, e.chain_id, e.idx, e.at, e.body_id, e.source, e.commitment, e.hash,"
            " c.name FROM entries e JOIN chains c ON c.id = e.chain_id"
            " WHERE e.seq = ? AND (? IS NULL OR c.name = ?)",
            (seq, self.customer, self.customer),
        ).fetchone()
        if found is None:
            return None
        _, chain_id, idx, at, body_id, source, commitment, stored, chain = found
        body = self._body(int(body_id))
        doc = body.doc
        # The link: recompute this entry's hash from its predecessor's.
        prev_row = conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
            (chain_id, seq),
        ).fetchone()
        prev: bytes | None
        if prev_row is not None:
            prev = bytes(prev_row[0])
        elif idx == 0:
            prev = genesis_hash(self._origin, str(chain))
        else:  # compacted: the anchor checkpoint holds the head before this entry
            anchor = conn.execute(
                "SELECT head FROM checkpoints WHERE chain_id = ? AND size = ?", (chain_id, idx)
            ).fetchone()
            prev = None if anchor is None else bytes(anchor[0])
        source_b = bytes(source)
        commit_b = None if commitment is None else bytes(commitment)
        link_valid = prev is not None and entry_hash(
            prev, idx, at, body.digest, source_b, commit_b
        ) == bytes(stored)
        checkpoint = self._checkpoint(chain_id, str(chain), int(idx), int(seq), bytes(stored))
        content = conn.execute(
            "SELECT c.payload, t.topic FROM content c LEFT JOIN topics t ON t.id = c.topic_id"
            " WHERE c.seq = ?",
            (seq,),
        ).fetchone()
        key = conn.execute("SELECT key_id FROM keys ORDER BY id DESC LIMIT 1").fetchone()
        return Detail(
            row=self._row(int(seq), int(at), body),
            grant=doc.get("grant"),
            policy_version=doc.get("policy_version"),
            legal_basis=doc.get("legal_basis"),
            shared=tuple(doc.get("shared") or ()),
            altered=tuple(tuple(a) for a in doc.get("altered") or ()),
            withheld=tuple(doc.get("withheld") or ()),
            reason=doc.get("reason"),
            reason_params=dict(doc.get("reason_params") or {}),
            texts=body.texts,
            topic=None if content is None else content[1],
            content=None if content is None or content[0] is None else bytes(content[0]),
            erased=commit_b is not None and content is None,
            chain=str(chain),
            index=int(idx),
            entry_hash=bytes(stored),
            link_valid=link_valid,
            checkpoint=checkpoint,
            key_fingerprint=None if key is None else fingerprint(bytes(key[0])),
        )

    def _checkpoint(
        self, chain_id: int, chain: str, idx: int, seq: int, stored: bytes
    ) -> CheckpointProof | None:
        conn = self.conn
        cp = conn.execute(
            "SELECT size, head, at, key_id, signature FROM checkpoints"
            " WHERE chain_id = ? AND size > ? ORDER BY size LIMIT 1",
            (chain_id, idx),
        ).fetchone()
        if cp is None:
            return None
        size, head, at, key_id, signature = (
            int(cp[0]),
            bytes(cp[1]),
            int(cp[2]),
            bytes(cp[3]),
            bytes(cp[4]),
        )
        public = self._keys.get(key_id)
        if public is None:
            row = conn.execute("SELECT public FROM keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is not None:
                public = self._keys[key_id] = bytes(row[0])
        message = checkpoint_message(
            origin=self._origin, customer=chain, size=size, head=head, at_us=at, key_id=key_id
        )
        valid = public is not None and PublicKey(public).verify(signature, message)
        # Walk from this entry to the checkpoint's size: the signed head must be reached.
        head_matches = False
        if size - idx <= MAX_WALK:
            prev = stored
            expected = idx + 1
            ok = True
            for i, e_at, body_id, source, commitment, h in conn.execute(
                "SELECT idx, at, body_id, source, commitment, hash FROM entries"
                " WHERE chain_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (chain_id, seq, size - idx - 1),
            ):
                computed = entry_hash(
                    prev,
                    i,
                    e_at,
                    self._body(int(body_id)).digest,
                    bytes(source),
                    None if commitment is None else bytes(commitment),
                )
                if i != expected or computed != bytes(h):
                    ok = False
                    break
                prev = computed
                expected += 1
            head_matches = ok and expected == size and prev == head
        return CheckpointProof(
            size=size,
            at_us=at,
            key_fingerprint=fingerprint(key_id),
            signature_valid=valid,
            head_matches=head_matches,
        )

    async def overview(self, now: datetime) -> Overview:
        stats = await self._run(self._stats, us_from_at(now))
        status = await self._status()
        return Overview(
            now_us=us_from_at(now), bucket_s=86400 // BUCKETS, recipients=stats, status=status
        )

    def _first_seq_at(self, at_us: int) -> int:
        """The first seq whose time is at or after ``at_us`` (times rise with seq)."""
        conn = self.conn
        bounds = conn.execute("SELECT min(seq), max(seq) FROM entries").fetchone()
        if bounds[0] is None:
            return 0
        lo, hi = int(bounds[0]), int(bounds[1]) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = conn.execute(
                "SELECT seq, at FROM entries WHERE seq >= ? ORDER BY seq LIMIT 1", (mid,)
            ).fetchone()
            if row is None or row[1] >= at_us:
                hi = mid
            else:
                lo = int(row[0]) + 1
        return lo

    def _stats(self, now_us: int) -> tuple[RecipientStats, ...]:
        day0 = now_us - 86_400_000_000
        bucket_us = 86_400_000_000 // BUCKETS
        first = self._first_seq_at(day0)
        clauses, params = self._restrict()
        where = " AND ".join(clauses)
        rows = self.conn.execute(
            "SELECT recipient_id, body_id, (at - ?) / ?, count(*) FROM entries"
            f" WHERE seq >= ? AND at >= ? AND recipient_id IS NOT NULL AND {where or '1'}"
            " GROUP BY 1, 2, 3",
            [day0, bucket_us, first, day0, *params],
        ).fetchall()
        per: dict[str, dict[str, Any]] = {}
        for recipient_id, body_id, bucket, count in rows:
            name = self._atom(int(recipient_id))
            body = self._body(int(body_id))
            slot = per.setdefault(
                name,
                {
                    "hour": 0,
                    "day": 0,
                    "withheld": 0,
                    "sent": set(),
                    "held": set(),
                    "b": [0] * BUCKETS,
                },
            )
            b = min(max(int(bucket), 0), BUCKETS - 1)
            if body.outcome == "withheld":
                slot["withheld"] += count
                slot["held"].update(body.doc.get("withheld") or ())
                continue
            slot["day"] += count
            if b >= BUCKETS - 2:
                slot["hour"] += count
            slot["b"][b] += count
            slot["sent"].update(body.doc.get("shared") or ())
            slot["sent"].update(a[0] for a in body.doc.get("altered") or ())
            slot["held"].update(body.doc.get("withheld") or ())
        return tuple(
            RecipientStats(
                recipient=name,
                last_hour=s["hour"],
                last_day=s["day"],
                withheld_day=s["withheld"],
                fields_sent=tuple(sorted(s["sent"])),
                never_sent=tuple(sorted(s["held"] - s["sent"])),
                buckets=tuple(s["b"]),
            )
            for name, s in sorted(per.items())
        )

    async def _status(self) -> Mapping[str, Any] | None:
        if self.control_socket is None:
            return None
        try:
            answer = await request(self.control_socket, "status", timeout=2.0)
        except ControlError:
            return None
        if self.customer is not None:  # nothing about other customers in a customer view
            answer["policies"] = [
                p for p in answer.get("policies") or () if p.get("customer") == self.customer
            ]
            answer.pop("pipeline", None)
        return answer

    async def policies(self) -> tuple[list[CustomerPolicy], bool]:
        live: list[CustomerPolicy] | None = None
        if self.control_socket is not None:
            try:
                fields = {} if self.customer is None else {"customer": self.customer}
                answer = await request(self.control_socket, "policies", timeout=5.0, **fields)
            except ControlError:
                live = None
            else:
                live = [CustomerPolicy.from_op(c) for c in answer.get("customers") or ()]
        if live is not None:
            return self._mine(live), True
        if self.policies_dir is None:
            return [], False
        return self._mine(_policies_from_files(self.policies_dir, self.names)), False

    def _mine(self, policies: list[CustomerPolicy]) -> list[CustomerPolicy]:
        if self.customer is None:
            return policies
        return [p for p in policies if p.customer == self.customer]

    async def withdraw(self, customer: str, grant: str, by: str) -> int:
        if self.customer is not None and customer != self.customer:
            raise SourceError(f"this view shows customer {self.customer}, not {customer}")
        if self.control_socket is None:
            raise SourceError("no gateway configured: withdrawal needs the running gateway")
        try:
            answer = await request(
                self.control_socket, "withdraw", customer=customer, grant=grant, by=by
            )
        except ControlError as exc:
            raise SourceError(str(exc)) from exc
        return int(answer["entry_seq"])


class LocalView:
    """The rows passing one filter; see the module docstring for the sparse index."""

    def __init__(self, source: LocalSource, flt: Query) -> None:
        self.source = source
        self.filter = flt
        self._count = 0
        self._last = 0  # highest seq examined
        self._marks: list[int] = []  # seq of rows 0, STRIDE, 2 * STRIDE, ...

    @property
    def count(self) -> int:
        return self._count

    async def refresh(self) -> int:
        return await self.source._run(self._refresh)

    def _refresh(self) -> int:
        src = self.source
        conn = src.conn
        top_row = conn.execute("SELECT max(seq) FROM entries").fetchone()
        top = 0 if top_row[0] is None else int(top_row[0])
        if top <= self._last:
            return 0
        where, params = src._where(self.filter)
        if self._last == 0 and top > STRIDE:  # first load: let SQLite do the scan
            marks = [
                int(r[0])
                for r in conn.execute(
                    "SELECT seq FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rn"
                    f" FROM entries WHERE seq <= ? AND {where}) WHERE (rn - 1) % ? = 0",
                    [top, *params, STRIDE],
                )
            ]
            count = int(
                conn.execute(
                    f"SELECT count(*) FROM entries WHERE seq <= ? AND {where}", [top, *params]
                ).fetchone()[0]
            )
            self._marks = marks
            self._count = count
            self._last = top
            return count
        added = 0
        for (seq,) in conn.execute(
            f"SELECT seq FROM entries WHERE seq > ? AND seq <= ? AND {where} ORDER BY seq",
            [self._last, top, *params],
        ):
            if self._count % STRIDE == 0:
                self._marks.append(int(seq))
            self._count += 1
            added += 1
        self._last = top
        return added

    async def rows(self, start: int, limit: int, find: Query | None = None) -> list[Row]:
        return await self.source._run(self._rows, start, limit, find)

    def _rows(self, start: int, limit: int, find: Query | None) -> list[Row]:
        start = max(0, min(start, self._count))
        limit = max(0, min(limit, self._count - start))
        if limit == 0:
            return []
        src = self.source
        where, params = src._where(self.filter)
        mark = start // STRIDE
        hit_sql, hit_params = "0", list[object]()
        if find is not None and not find.empty:
            hit_sql, hit_params = src._where(find, restrict=False)
        cursor = src.conn.execute(
            f"SELECT seq, at, body_id, ({hit_sql}) FROM entries"
            f" WHERE seq >= ? AND seq <= ? AND {where} ORDER BY seq LIMIT ? OFFSET ?",
            [*hit_params, self._marks[mark], self._last, *params, limit, start - mark * STRIDE],
        )
        return [
            src._row(int(seq), int(at), src._body(int(body_id)), bool(hit))
            for seq, at, body_id, hit in cursor
        ]

    def _position(self, seq: int) -> int:
        """The position of ``seq`` (a row of this view) in the view."""
        src = self.source
        mark = bisect.bisect_right(self._marks, seq) - 1
        if mark < 0:
            return 0
        where, params = src._where(self.filter)
        before = src.conn.execute(
            f"SELECT count(*) FROM entries WHERE seq >= ? AND seq < ? AND {where}",
            [self._marks[mark], seq, *params],
        ).fetchone()[0]
        return mark * STRIDE + int(before)

    def _seq_at(self, position: int) -> int | None:
        rows = self._rows(position, 1, None)
        return rows[0].seq if rows else None

    async def locate(self, find: Query, position: int | None, forward: bool) -> int | None:
        return await self.source._run(self._locate, find, position, forward)

    def _locate(self, find: Query, position: int | None, forward: bool) -> int | None:
        src = self.source
        where, params = src._where(self.filter)
        fwhere, fparams = src._where(find, restrict=False)
        if position is None:
            origin = 0 if forward else self._last + 1
        else:
            at = self._seq_at(position)
            if at is None:
                return None
            origin = at
        if forward:
            sql = (
                f"SELECT seq FROM entries WHERE seq > ? AND seq <= ? AND {where} AND {fwhere}"
                " ORDER BY seq LIMIT 1"
            )
            args: list[object] = [origin, self._last, *params, *fparams]
        else:
            sql = (
                f"SELECT seq FROM entries WHERE seq < ? AND {where} AND {fwhere}"
                " ORDER BY seq DESC LIMIT 1"
            )
            args = [origin, *params, *fparams]
        found = src.conn.execute(sql, args).fetchone()
        return None if found is None else self._position(int(found[0]))

    async def matches(self, find: Query) -> int:
        return await self.source._run(self._matches, find)

    def _matches(self, find: Query) -> int:
        src = self.source
        where, params = src._where(self.filter)
        fwhere, fparams = src._where(find, restrict=False)
        return int(
            src.conn.execute(
                f"SELECT count(*) FROM entries WHERE seq <= ? AND {where} AND {fwhere}",
                [self._last, *params, *fparams],
            ).fetchone()[0]
        )


# -- policy files (the gateway is not running) ---------------------------------------------
def _merge_names(base: Names, extra: Names) -> Names:
    return Names(
        devices={**extra.devices, **base.devices},
        recipients={**extra.recipients, **base.recipients},
        customers={**extra.customers, **base.customers},
    )


def _documents(policies_dir: Path) -> list[Any]:
    docs: list[Any] = []
    for path in sorted(policies_dir.glob("*.yaml")) + sorted(policies_dir.glob("*.yml")):
        try:
            docs.append(load_policy(path))
        except PolicyError as exc:
            docs.append(exc)
    return docs


def _names_from_files(policies_dir: Path) -> Names:
    devices: dict[str, str] = {}
    customers: dict[str, str] = {}
    for doc in _documents(policies_dir):
        if isinstance(doc, Exception):
            continue
        customers[doc.customer] = doc.name
        for device in doc.devices:
            devices[device.id] = device.name
    return Names(devices=devices, customers=customers)


def _policies_from_files(policies_dir: Path, names: Names) -> list[CustomerPolicy]:
    out: list[CustomerPolicy] = []
    for doc in _documents(policies_dir):
        if isinstance(doc, Exception):
            stem = str(getattr(doc, "path", "?"))
            out.append(CustomerPolicy(stem, stem, "de", None, {}, (), error=str(doc)))
            continue
        grants = []
        for g in doc.grants:
            fields = ("$payload",) if g.payload == "opaque" else tuple(g.fields)
            if g.aggregate is not None:
                fields = tuple(g.aggregate.fields)
            devices = ("*",) if g.devices == "*" else tuple(g.devices)
            grants.append(
                GrantView(
                    id=g.id,
                    recipient=g.recipient,
                    recipient_name=names.recipient(g.recipient),
                    purpose=g.purpose_text(),
                    legal_basis=str(g.legal_basis),
                    consent=None if g.consent is None else g.consent.model_dump(mode="json"),
                    withdrawn=False,
                    fields=fields,
                    devices=devices + tuple(f"{k} (*)" for k in g.kinds),
                )
            )
        out.append(
            CustomerPolicy(
                customer=doc.customer,
                name=doc.name,
                language=doc.language,
                version=doc._sha256,
                describe={},
                grants=tuple(grants),
            )
        )
    return out
