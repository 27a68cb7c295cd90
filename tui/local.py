"""The local data source: the log database, read-only, and the gateway's control socket.

Reading without loading the log: a ``LocalView`` keeps, for its filter, the row count and the
seq of every ``STRIDE``-th matching row (a sparse index, 8 bytes per ``STRIDE`` rows, built by
one scan when the filter changes). Row ``i`` is then one keyset query: start at the mark before
``i`` and skip at most ``STRIDE - 1`` rows. New entries are taken in by seq (``seq > last``), so
a refresh costs what was committed since the last one.

Every query goes through the log's one reader (``gateway.log.reader.Reader``), opened on one
worker thread; a customer view opens it bound to that customer, so the restriction is in the
reader's SQL, not here. Bodies (the repeated part of entries) are few: read once and kept, with
the casefolded text a free-text filter searches. "Verified" in the details is the verifier's own
check (``gateway.log.legacy.prove_entry``), the code ``einblick verify`` runs.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from gateway.errors import LogError
from gateway.log.documents import ShownBody
from gateway.log.entry import us_from_at
from gateway.log.keys import fingerprint
from gateway.log.reader import Reader
from gateway.log.results import EntryFilter, EntryLine, Match
from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, ask, request
from gateway.operations.portal.pending import pending_requests
from gateway.operations.portal.store import ErasureRequest
from gateway.operations.status_model import Status
from gateway.rights.consent_events import held_grants
from tui.model import (
    CheckpointProof,
    CustomerPolicy,
    Detail,
    Names,
    Overview,
    RecipientStats,
    RightResult,
    Row,
)
from tui.policy_files import _merge_names, _names_from_files, _policies_from_files
from tui.query import Query
from tui.source import SourceError
from tui.summary import _summaries

__all__ = ["STRIDE", "LocalSource", "LocalView"]

T = TypeVar("T")
STRIDE = 256
BUCKETS = 48  # sparkline: 48 half-hours


@dataclass(slots=True)
class _Tally:
    """One recipient's counts while the overview's day is read (becomes a RecipientStats)."""

    hour: int = 0
    day: int = 0
    withheld: int = 0
    sent: set[str] = field(default_factory=set)  # fields shared or altered
    held: set[str] = field(default_factory=set)  # fields withheld
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)


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
    doc: ShownBody
    texts: Mapping[str, str]
    summary: Mapping[str, str]
    haystack: str  # casefolded text the free-text filter searches


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
        self._reader: Reader | None = None
        self._bodies: dict[int, _Body] = {}

    # -- plumbing ----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            raise SourceError("the log database is not open")
        return self._reader

    async def open(self) -> None:
        if not self.database.exists():
            raise SourceError(f"no log database at {self.database}")
        await self._run(self._open)
        if self.policies_dir is not None:
            self.names = _merge_names(self.names, _names_from_files(self.policies_dir))

    def _open(self) -> None:
        try:
            self._reader = Reader.open(self.database, customer=self.customer)
        except LogError as exc:
            raise SourceError(f"cannot read the log database {self.database}: {exc}") from exc
        self._load_bodies()

    async def close(self) -> None:
        if self._reader is not None:
            await self._run(self._reader.close)
            self._reader = None
        self._pool.shutdown(wait=True)

    # -- caches (worker thread only) ---------------------------------------------------
    def _load_bodies(self) -> None:
        for found in self.reader.new_bodies():
            doc = found.doc
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
                *found.texts.values(),
                *doc.get("shared", ()),
                *doc.get("withheld", ()),
                *(a[0] for a in doc.get("altered", ())),
            ]
            self._bodies[found.id] = _Body(
                id=found.id,
                digest=found.digest,
                kind=found.kind,
                customer=doc.get("customer"),
                device=device,
                recipient=recipient,
                outcome=doc.get("outcome"),
                purpose=purpose,
                doc=doc,
                texts=found.texts,
                summary=_summaries(doc, found.texts),
                haystack="\n".join(hay).casefold(),
            )

    def _body(self, body_id: int) -> _Body:
        found = self._bodies.get(body_id)
        if found is None:
            self._load_bodies()
            found = self._bodies.get(body_id)
            if found is None:
                raise SourceError(f"log database: entry refers to body {body_id}, not stored")
        return found

    # -- a query as the reader's filter ------------------------------------------------
    @staticmethod
    def _matches(values: Sequence[str], names: Mapping[str, str]) -> tuple[Match, ...]:
        """Ids containing a value, or whose human name contains it."""
        return tuple(
            Match(
                contains=value,
                exactly=tuple(key for key, name in names.items() if value in name.casefold()),
            )
            for value in values
        )

    def _filter(self, q: Query | None) -> EntryFilter | None:
        if q is None:
            return None
        body_ids = None
        if q.words:
            self._load_bodies()
            body_ids = frozenset(
                b.id for b in self._bodies.values() if all(w in b.haystack for w in q.words)
            )
        return EntryFilter(
            devices=self._matches(q.devices, self.names.devices),
            recipients=self._matches(q.recipients, self.names.recipients),
            customers=self._matches(q.customers, self.names.customers),
            outcomes=tuple(q.outcomes),
            body_ids=body_ids,
        )

    # -- the DataSource API ------------------------------------------------------------
    async def view(self, flt: Query) -> LocalView:
        view = LocalView(self, flt)
        await view.refresh()
        return view

    async def detail(self, seq: int) -> Detail | None:
        return await self._run(self._detail, seq)

    def _row(self, line: EntryLine) -> Row:
        body = self._body(line.body_id)
        return Row(
            seq=line.seq,
            at_us=line.at_us,
            kind=body.kind,
            customer=body.customer,
            device=body.device,
            recipient=body.recipient,
            outcome=body.outcome,
            purpose=body.purpose,
            summary=body.summary,
            hit=line.hit,
        )

    def _detail(self, seq: int) -> Detail | None:
        reader = self.reader
        facts = reader.entry(seq)
        if facts is None:
            return None
        body = self._body(facts.line.body_id)
        doc = body.doc
        proof = reader.proof(facts)
        cp = proof.checkpoint
        return Detail(
            row=self._row(facts.line),
            grant=doc.get("grant"),
            policy_version=doc.get("policy_version"),
            legal_basis=doc.get("legal_basis"),
            shared=tuple(doc.get("shared") or ()),
            altered=tuple((p, t, d) for p, t, d in doc.get("altered") or ()),
            withheld=tuple(doc.get("withheld") or ()),
            reason=doc.get("reason"),
            reason_params=dict(doc.get("reason_params") or {}),
            texts=body.texts,
            topic=facts.topic,
            content=facts.content,
            erased=facts.commitment is not None and not facts.content_held,
            chain=facts.chain,
            index=facts.line.index,
            entry_hash=facts.entry_hash,
            link_valid=proof.link_valid,
            checkpoint=None
            if cp is None
            else CheckpointProof(
                size=cp.size,
                at_us=cp.at,
                key_fingerprint=fingerprint(cp.key_id),
                signature_valid=proof.signature_valid,
                head_matches=proof.head_matches,
            ),
            key_fingerprint=reader.newest_key_fingerprint(),
        )

    async def overview(self, now: datetime) -> Overview:
        stats = await self._run(self._stats, us_from_at(now))
        status = await self._status()
        requests: tuple[ErasureRequest, ...] = ()
        if self.customer is None and self.control_socket is not None:
            portal_db = self.control_socket.parent / "portal.db"  # both in the data directory
            requests = tuple(await pending_requests(portal_db, self.control_socket))
        return Overview(
            now_us=us_from_at(now),
            bucket_s=86400 // BUCKETS,
            recipients=stats,
            status=status,
            erasure_requests=requests,
        )

    def _stats(self, now_us: int) -> tuple[RecipientStats, ...]:
        day0 = now_us - 86_400_000_000
        bucket_us = 86_400_000_000 // BUCKETS
        reader = self.reader
        counts = reader.recipient_counts(day0, bucket_us, reader.first_seq_at(day0))
        per: dict[str, _Tally] = {}
        for found in counts:
            name = reader.atom(found.recipient_id) or f"#{found.recipient_id}"
            body = self._body(found.body_id)
            count = found.count
            slot = per.setdefault(name, _Tally())
            b = min(max(found.bucket, 0), BUCKETS - 1)
            if body.kind != "decision":
                continue  # a consent given or withdrawn names its recipient, but is no message
            if body.outcome == "withheld":
                slot.withheld += count
                slot.held.update(body.doc.get("withheld") or ())
                continue
            slot.day += count
            if b >= BUCKETS - 2:
                slot.hour += count
            slot.buckets[b] += count
            slot.sent.update(body.doc.get("shared") or ())
            slot.sent.update(a[0] for a in body.doc.get("altered") or ())
            slot.held.update(body.doc.get("withheld") or ())
        return tuple(
            RecipientStats(
                recipient=name,
                last_hour=s.hour,
                last_day=s.day,
                withheld_day=s.withheld,
                fields_sent=tuple(sorted(s.sent)),
                never_sent=tuple(sorted(s.held - s.sent)),
                buckets=tuple(s.buckets),
            )
            for name, s in sorted(per.items())
        )

    async def _status(self) -> Status | None:
        if self.control_socket is None:
            return None
        try:
            status = Status.read(await request(self.control_socket, "status", timeout=2.0))
        except ControlError:
            return None
        if self.customer is not None:  # nothing about other customers in a customer view
            status = status.model_copy(
                update={
                    "policies": [p for p in status.policies if p.customer == self.customer],
                    "pipeline": None,
                    "witnesses": [w.for_log(self.customer) for w in status.witnesses],
                }
            )
        return status

    async def policies(self) -> tuple[list[CustomerPolicy], bool]:
        live: list[CustomerPolicy] | None = None
        if self.control_socket is not None:
            try:
                asked = ops.CustomerRequest(customer=self.customer)
                answer = await ask(self.control_socket, ops.POLICIES, asked, timeout=5.0)
            except ControlError:
                live = None
            else:
                live = [CustomerPolicy.from_reply(c) for c in answer.customers]
        if live is not None:
            return self._mine(live), True
        if self.policies_dir is None:
            return [], False
        # The holds in force from the log itself: a grant held back is not shown as sending.
        held = await self._run(held_grants, self.database)
        return self._mine(_policies_from_files(self.policies_dir, self.names, held)), False

    def _mine(self, policies: list[CustomerPolicy]) -> list[CustomerPolicy]:
        if self.customer is None:
            return policies
        return [p for p in policies if p.customer == self.customer]

    async def withdraw(self, customer: str, grant: str, by: str) -> int:
        return (await self.act(customer, grant, "withdraw", by)).entry_seq

    async def act(self, customer: str, grant: str, action: str, by: str) -> RightResult:
        if self.customer is not None and customer != self.customer:
            raise SourceError(f"this view shows customer {self.customer}, not {customer}")
        if self.control_socket is None:
            raise SourceError("no gateway configured: this action needs the running gateway")
        try:
            fields = ops.ConsentRequest(customer=customer, grant=grant, by=by)
            answer = await ask(self.control_socket, ops.RIGHTS[action], fields)
        except KeyError:
            raise SourceError(f"no such action: {action}") from None
        except ControlError as exc:
            raise SourceError(str(exc)) from exc
        return RightResult.from_reply(answer)


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
        reader = self.source.reader
        top = reader.latest_seq()
        if top <= self._last:
            return 0
        flt = self.source._filter(self.filter)
        if self._last == 0 and top > STRIDE:  # first load: let SQLite do the scan
            self._marks = reader.marks(flt, top, STRIDE)
            self._count = reader.count(flt, hi=top + 1)
            self._last = top
            return self._count
        added = 0
        for seq in reader.seqs(flt, self._last, top):
            if self._count % STRIDE == 0:
                self._marks.append(seq)
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
        mark = start // STRIDE
        marker = None if find is None or find.empty else src._filter(find)
        lines = src.reader.lines(
            src._filter(self.filter),
            lo=self._marks[mark],
            hi=self._last,
            limit=limit,
            skip=start - mark * STRIDE,
            find=marker,
        )
        return [src._row(line) for line in lines]

    def _position(self, seq: int) -> int:
        """The position of ``seq`` (a row of this view) in the view."""
        mark = bisect.bisect_right(self._marks, seq) - 1
        if mark < 0:
            return 0
        src = self.source
        before = src.reader.count(src._filter(self.filter), lo=self._marks[mark], hi=seq)
        return mark * STRIDE + before

    def _seq_at(self, position: int) -> int | None:
        rows = self._rows(position, 1, None)
        return rows[0].seq if rows else None

    async def locate(self, find: Query, position: int | None, forward: bool) -> int | None:
        return await self.source._run(self._locate, find, position, forward)

    def _locate(self, find: Query, position: int | None, forward: bool) -> int | None:
        src = self.source
        if position is None:
            origin = 0 if forward else self._last + 1
        else:
            at = self._seq_at(position)
            if at is None:
                return None
            origin = at
        found = src.reader.neighbour(
            src._filter(self.filter),
            src._filter(find) or EntryFilter(),
            origin,
            upto=self._last,
            forward=forward,
        )
        return None if found is None else self._position(found)

    async def matches(self, find: Query) -> int:
        return await self.source._run(self._matches, find)

    def _matches(self, find: Query) -> int:
        src = self.source
        return src.reader.count(
            src._filter(self.filter), hi=self._last + 1, find=src._filter(find) or EntryFilter()
        )
