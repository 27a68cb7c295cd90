"""Reading the log from asyncio (the TUI, verify and export front-ends): aiosqlite, read-only.

Each ``LogReader`` opens its own ``mode=ro`` connection (WAL lets it read while the writer
writes). Pages are keyset-paginated by ``seq`` -- ``seq < before`` newest first, or
``seq > after`` oldest first -- never OFFSET, so the millionth page costs what the first does;
filters on customer, device and recipient use their indexes. Bodies and texts are cached: they
repeat, so a page of 200 entries usually needs no extra queries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from gateway.errors import LogError
from gateway.keys import PublicKey, fingerprint
from gateway.log.chain import GATEWAY_CHAIN, checkpoint_message
from gateway.log.entry import OUTCOMES, at_from_us, us_from_at

__all__ = ["CheckpointInfo", "EntryDetail", "EntryRow", "LogReader", "Stats"]

_OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}


@dataclass(frozen=True, slots=True)
class EntryRow:
    seq: int
    at: datetime
    customer: str
    index: int
    kind: str
    device: str | None
    recipient: str | None
    outcome: str | None
    text_de: str
    text_en: str


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    customer: str
    size: int
    head: bytes
    at: datetime
    key_fingerprint: str
    signature_valid: bool


@dataclass(frozen=True, slots=True)
class EntryDetail:
    row: EntryRow
    grant: str | None
    policy_version: str | None
    purpose: dict[str, str]
    legal_basis: str | None
    shared: tuple[str, ...]
    altered: tuple[tuple[str, str, str], ...]
    withheld: tuple[str, ...]
    reason: str | None
    reason_params: dict[str, str]
    subject: str | None
    topic: str | None  # None once erased (or never held)
    content: bytes | None
    source_digest: bytes
    commitment: bytes | None
    entry_hash: bytes
    checkpoint: CheckpointInfo | None  # the first checkpoint covering this entry, if any yet


@dataclass(slots=True)
class Stats:
    """An overview over a time window: per recipient messages and fields sent, outcome counts."""

    messages: Counter[str] = field(default_factory=Counter)
    fields_sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


_ENTRY_COLS = "e.seq, e.at, e.chain_id, e.idx, e.body_id, e.device_id, e.recipient_id, e.outcome"


class LogReader:
    """An async, read-only view of the log database."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._chains: dict[int, str] = {}
        self._atoms: dict[int, str] = {}
        self._bodies: dict[int, dict[str, Any]] = {}
        self._texts: dict[str, str] = {}
        self._keys: dict[bytes, PublicKey] = {}
        self.origin = ""

    @classmethod
    async def open(cls, path: str | Path) -> LogReader:
        try:
            conn = await aiosqlite.connect(f"file:{Path(path)}?mode=ro", uri=True)
        except Exception as exc:
            raise LogError(f"{path}: cannot open the log read-only: {exc}") from exc
        reader = cls(conn)
        await reader._refresh()
        return reader

    async def close(self) -> None:
        await self._conn.close()

    async def _refresh(self) -> None:
        async with self._conn.execute("SELECT value FROM meta WHERE key = 'origin'") as cur:
            row = await cur.fetchone()
        self.origin = "" if row is None else str(row[0])
        self._chains = {
            i: n for i, n in await self._conn.execute_fetchall("SELECT id, name FROM chains")
        }
        self._atoms = {
            i: v for i, v in await self._conn.execute_fetchall("SELECT id, value FROM atoms")
        }
        self._keys = {
            bytes(k): PublicKey(bytes(p))
            for k, p in await self._conn.execute_fetchall("SELECT key_id, public FROM keys")
        }

    async def _body(self, body_id: int) -> dict[str, Any]:
        found = self._bodies.get(body_id)
        if found is None:
            rows = await self._conn.execute_fetchall(
                "SELECT doc FROM bodies WHERE id = ?", (body_id,)
            )
            found = orjson.loads(next(iter(rows))[0])
            for lang in ("text_de", "text_en"):
                digest = found[lang]
                if digest not in self._texts:
                    text_rows = await self._conn.execute_fetchall(
                        "SELECT text FROM texts WHERE digest = ?", (bytes.fromhex(digest),)
                    )
                    self._texts[digest] = next(iter(text_rows), ("",))[0]
            self._bodies[body_id] = found
        return found

    async def _name(self, table: dict[int, str], ident: int | None) -> str | None:
        if ident is None:
            return None
        if ident not in table:
            await self._refresh()
        return table.get(ident)

    async def _row(self, r: Any) -> EntryRow:
        seq, at, chain_id, idx, body_id, device_id, recipient_id, outcome = r
        body = await self._body(body_id)
        return EntryRow(
            seq=seq,
            at=at_from_us(at),
            customer=await self._name(self._chains, chain_id) or f"#{chain_id}",
            index=idx,
            kind=body["kind"],
            device=await self._name(self._atoms, device_id),
            recipient=await self._name(self._atoms, recipient_id),
            outcome=_OUTCOME_NAMES.get(outcome),
            text_de=self._texts[body["text_de"]],
            text_en=self._texts[body["text_en"]],
        )

    async def latest_seq(self) -> int:
        rows = await self._conn.execute_fetchall("SELECT max(seq) FROM entries")
        return int(next(iter(rows))[0] or 0)

    async def _where(
        self,
        customer: str | None,
        device: str | None,
        recipient: str | None,
        outcome: str | None,
        text: str | None,
    ) -> tuple[list[str], list[Any]] | None:
        """SQL conditions for the filters; None when a filter names nothing in the log."""
        await self._refresh()
        where: list[str] = []
        params: list[Any] = []
        if customer is not None:
            ids = [i for i, n in self._chains.items() if n == customer]
            if not ids:
                return None
            where.append("e.chain_id = ?")
            params.append(ids[0])
        for column, value in (("device_id", device), ("recipient_id", recipient)):
            if value is not None:
                ids = [i for i, v in self._atoms.items() if v == value]
                if not ids:
                    return None
                where.append(f"e.{column} = ?")
                params.append(ids[0])
        if outcome is not None:
            if outcome not in OUTCOMES:
                return None
            where.append("e.outcome = ?")
            params.append(OUTCOMES[outcome])
        if text is not None:
            needle = f"%{text}%"
            hits = {
                bytes(d).hex()
                for (d,) in await self._conn.execute_fetchall(
                    "SELECT digest FROM texts WHERE text LIKE ?", (needle,)
                )
            }
            rows = [
                (body_id,)
                for body_id, doc in await self._conn.execute_fetchall("SELECT id, doc FROM bodies")
                if hits.intersection((orjson.loads(doc)["text_de"], orjson.loads(doc)["text_en"]))
            ]
            ids = sorted({int(r[0]) for r in rows})
            if not ids:
                return None
            where.append(f"e.body_id IN ({','.join('?' * len(ids))})")
            params += ids
        return where, params

    async def page(
        self,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 200,
        customer: str | None = None,
        device: str | None = None,
        recipient: str | None = None,
        outcome: str | None = None,
        text: str | None = None,
    ) -> list[EntryRow]:
        """Up to ``limit`` entries: newest first below ``before``, or oldest first above ``after``."""
        found = await self._where(customer, device, recipient, outcome, text)
        if found is None:
            return []
        where, params = found
        if before is not None:
            where.append("e.seq < ?")
            params.append(before)
        if after is not None:
            where.append("e.seq > ?")
            params.append(after)
        order = "ASC" if after is not None and before is None else "DESC"
        sql = f"SELECT {_ENTRY_COLS} FROM entries e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY e.seq {order} LIMIT ?"
        rows = await self._conn.execute_fetchall(sql, (*params, limit))
        return [await self._row(r) for r in rows]

    async def get(self, seq: int) -> EntryDetail:
        rows = list(
            await self._conn.execute_fetchall(
                f"SELECT {_ENTRY_COLS}, e.source, e.commitment, e.hash, t.topic, c.payload"
                " FROM entries e LEFT JOIN content c ON c.seq = e.seq"
                " LEFT JOIN topics t ON t.id = c.topic_id WHERE e.seq = ?",
                (seq,),
            )
        )
        if not rows:
            raise LogError(f"log entry {seq}: not found (compacted, or never written)")
        r = rows[0]
        row = await self._row(r[:8])
        body = await self._body(r[4])
        cps = await self.checkpoints(customer=row.customer, covering=row.index, limit=1)
        return EntryDetail(
            row=row,
            grant=body["grant"],
            policy_version=body["policy_version"],
            purpose=dict(body["purpose"]),
            legal_basis=body["legal_basis"],
            shared=tuple(body["shared"]),
            altered=tuple((a[0], a[1], a[2]) for a in body["altered"]),
            withheld=tuple(body["withheld"]),
            reason=body["reason"],
            reason_params=dict(body["reason_params"]),
            subject=body["subject"],
            topic=r[11],
            content=None if r[12] is None else bytes(r[12]),
            source_digest=bytes(r[8]),
            commitment=None if r[9] is None else bytes(r[9]),
            entry_hash=bytes(r[10]),
            checkpoint=cps[0] if cps else None,
        )

    async def checkpoints(
        self, *, customer: str | None = None, covering: int | None = None, limit: int = 100
    ) -> list[CheckpointInfo]:
        """Checkpoints, newest first; with ``covering``, the first one covering that index."""
        await self._refresh()
        sql = "SELECT chain_id, size, head, at, key_id, signature FROM checkpoints"
        where: list[str] = []
        params: list[Any] = []
        if customer is not None:
            ids = [i for i, n in self._chains.items() if n == customer]
            if not ids:
                return []
            where.append("chain_id = ?")
            params.append(ids[0])
        if covering is not None:
            where.append("size > ?")
            params.append(covering)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY size ASC" if covering is not None else " ORDER BY id DESC"
        rows = await self._conn.execute_fetchall(sql + " LIMIT ?", (*params, limit))
        out = []
        for chain_id, size, head, at, key_id, sig in rows:
            name = self._chains.get(chain_id, f"#{chain_id}")
            key = self._keys.get(bytes(key_id))
            message = checkpoint_message(
                origin=self.origin, customer=name, size=size, head=bytes(head), at_us=at,
                key_id=bytes(key_id),
            )  # fmt: skip
            valid = key is not None and key.verify(bytes(sig), message)
            out.append(
                CheckpointInfo(name, size, bytes(head), at_from_us(at), fingerprint(key_id), valid)
            )
        return out

    async def count(
        self,
        *,
        customer: str | None = None,
        device: str | None = None,
        recipient: str | None = None,
        outcome: str | None = None,
        text: str | None = None,
    ) -> int:
        found = await self._where(customer, device, recipient, outcome, text)
        if found is None:
            return 0
        where, params = found
        sql = "SELECT count(*) FROM entries e" + (" WHERE " + " AND ".join(where) if where else "")
        rows = await self._conn.execute_fetchall(sql, params)
        return int(next(iter(rows))[0])

    async def stats(self, since: datetime, *, customer: str | None = None) -> Stats:
        """Messages and fields sent per recipient and outcome counts for entries at >= since."""
        at = us_from_at(since)
        # Entries arrive in time order give or take the batching; a checkpoint signed well
        # before ``since`` bounds the scan from below, so no index on time is needed.
        floor_rows = await self._conn.execute_fetchall(
            "SELECT coalesce(max(seq), 0) FROM checkpoints WHERE at < ?",
            (us_from_at(since - timedelta(seconds=60)),),
        )
        floor = int(next(iter(floor_rows))[0])
        found = await self._where(customer, None, None, None, None)
        stats = Stats()
        if found is None:
            return stats
        where, params = found
        where += ["e.seq > ?", "e.at >= ?"]
        params += [floor, at]
        rows = await self._conn.execute_fetchall(
            "SELECT e.body_id, e.recipient_id, e.outcome, count(*) FROM entries e WHERE "
            + " AND ".join(where)
            + " GROUP BY e.body_id, e.recipient_id, e.outcome",
            params,
        )
        for body_id, recipient_id, outcome, n in rows:
            body = await self._body(body_id)
            name = await self._name(self._atoms, recipient_id) or GATEWAY_CHAIN
            stats.outcomes[_OUTCOME_NAMES.get(outcome) or body["kind"]] += n
            if body["kind"] == "decision":
                stats.messages[name] += n
                if body["outcome"] in ("shared", "altered"):
                    stats.fields_sent[name] += n * (len(body["shared"]) + len(body["altered"]))
        return stats
