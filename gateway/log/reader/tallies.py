"""Counts over many entries: the statistics, the report's data, and what an erasure touches or an
audit compares. Each statement carries the bound customer's restriction (``_own``) or takes the
caller's chain id, which came from this reader's own (restricted) rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from gateway.log.chain import GATEWAY_CHAIN, source_commitment
from gateway.log.documents import ShownBody
from gateway.log.entry import OUTCOMES, us_from_at
from gateway.log.reader.base import OUTCOME_NAMES, ReaderBase
from gateway.log.results import RecipientCount, ReportData, ReportGroup, ReportSingle, Stats

__all__ = ["TallyQueries"]

_CHUNK = 500  # indexes per statement (SQLite's limit on parameters is far above)


class TallyQueries(ReaderBase):
    """Grouped counts for statistics, reports, erasure and audit."""

    def recipient_counts(
        self, since_us: int, bucket_us: int, first_seq: int = 0
    ) -> list[RecipientCount]:
        """Entries to a recipient at or after ``since_us``, counted per recipient, body and
        ``bucket_us``-wide time bucket (``first_seq`` bounds the scan from below); a decision
        a later one taken again at send time replaced is not counted (``without_superseded``)."""
        own, params = self._own()
        rows = self._conn.execute(
            "SELECT recipient_id, body_id, (at - ?) / ?, count(*) FROM entries"
            f" WHERE seq >= ? AND at >= ? AND recipient_id IS NOT NULL AND {own}"
            " GROUP BY 1, 2, 3",
            [since_us, bucket_us, first_seq, since_us, *params],
        ).fetchall()
        counts = {(int(r), int(b), int(k)): int(n) for r, b, k, n in rows}
        # Asked of the bodies table, not through ``body()``: that takes in new bodies, which a
        # caller reading them as they come (tui/local.py, ``new_bodies``) would then never see.
        seen = sorted({b for _, b, _ in counts})
        later: list[int] = []
        for at in range(0, len(seen), _CHUNK):
            chunk = seen[at : at + _CHUNK]
            later += [
                int(body_id)
                for (body_id,) in self._conn.execute(
                    f"SELECT id FROM bodies WHERE id IN ({','.join('?' * len(chunk))})"
                    " AND json_extract(CAST(doc AS TEXT), '$.supersedes') IS NOT NULL",
                    chunk,
                )
            ]
        for at in range(0, len(later), _CHUNK):
            chunk = later[at : at + _CHUNK]
            # The replaced entry: in the replacing one's log, at the index its body names.
            for key in self._conn.execute(
                "SELECT o.recipient_id, o.body_id, (o.at - ?) / ? FROM entries s"
                " JOIN bodies d ON d.id = s.body_id JOIN trees t ON t.chain_id = s.chain_id"
                " JOIN entries o ON o.chain_id = s.chain_id"
                " AND o.idx = t.base + json_extract(CAST(d.doc AS TEXT), '$.supersedes')"
                f" WHERE s.body_id IN ({','.join('?' * len(chunk))}) AND s.seq >= ? AND s.at >= ?"
                " AND o.seq >= ? AND o.at >= ?",  # ``s.seq``: by the key, not a scan of the log
                (since_us, bucket_us, *chunk, first_seq, since_us, first_seq, since_us),
            ):
                found = (int(key[0]), int(key[1]), int(key[2]))
                if counts.get(found, 0) > 0:
                    counts[found] -= 1
        return [RecipientCount(r, b, k, n) for (r, b, k), n in counts.items() if n > 0]

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
        """The highest seq of a checkpoint (of the bound customer's) signed before
        ``before_us`` (0: none)."""
        own, params = self._own()
        row = self._conn.execute(
            f"SELECT coalesce(max(seq), 0) FROM checkpoints WHERE at < ? AND {own}",
            [before_us, *params],
        ).fetchone()
        return int(row[0])

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

    def report_range(
        self, chain_id: int, since_us: int, lo: int, hi: int
    ) -> tuple[dict[int, tuple[int, int, int]], list[tuple[int, int, int]]]:
        """The chain's entries at tree index ``lo`` <= idx < ``hi`` (and at or after
        ``since_us``), counted for the report: per body id (count, first at, last at), and
        (seq, at, body id) of each entry of a rare (non-decision) kind, in log order.

        Bounded by index, not by "everything there": the report counts what its verification
        covered, and an entry committed after the verification read is not among it. Another
        customer's chain than the bound one counts nothing."""
        own, params = self._own()
        groups = {
            int(body_id): (int(count), int(first), int(last))
            for body_id, count, first, last in self._conn.execute(
                "SELECT body_id, count(*), min(at), max(at) FROM entries"
                f" WHERE chain_id = ? AND idx >= ? AND idx < ? AND at >= ? AND {own}"
                " GROUP BY body_id",
                (chain_id, lo, hi, since_us, *params),
            ).fetchall()
        }
        rare = [i for i in groups if self.body(i).doc["kind"] != "decision"]
        singles: list[tuple[int, int, int]] = []
        if rare:
            marks = ",".join("?" * len(rare))
            singles = [
                (int(seq), int(at), int(body_id))
                for seq, at, body_id in self._conn.execute(
                    "SELECT seq, at, body_id FROM entries WHERE chain_id = ? AND idx >= ?"
                    f" AND idx < ? AND at >= ? AND body_id IN ({marks}) ORDER BY seq",
                    (chain_id, lo, hi, since_us, *rare),
                ).fetchall()
            ]
        return groups, singles

    def without_superseded(
        self,
        chain_id: int,
        groups: Mapping[int, tuple[int, int, int]],
        since_us: int,
        lo: int,
        hi: int,
    ) -> dict[int, tuple[int, int, int]]:
        """``groups`` (``report_range``'s counts over the same range) less every decision a later
        one, taken again at send time, replaced (its body's ``supersedes``, SPEC.md): a message
        counts once, by what its last decision says reached the recipient. A count that loses
        entries gets the first and last time of those left."""
        indexes = {
            int(superseded)
            for body_id in groups
            if (superseded := self.body(body_id).doc.get("supersedes")) is not None
        }
        if not indexes:
            return dict(groups)
        base = self._base(chain_id)  # a tree index is the stored position less the base
        replaced = sorted(base + index for index in indexes)
        gone: dict[int, dict[int, int]] = {}  # body id -> {idx: at} of the entries replaced
        for at in range(0, len(replaced), _CHUNK):
            chunk = replaced[at : at + _CHUNK]
            for idx, body_id, when in self._conn.execute(
                "SELECT idx, body_id, at FROM entries WHERE chain_id = ? AND idx >= ? AND idx < ?"
                f" AND at >= ? AND idx IN ({','.join('?' * len(chunk))})",
                (chain_id, lo, hi, since_us, *chunk),
            ):
                gone.setdefault(int(body_id), {})[int(idx)] = int(when)
        out = dict(groups)
        for body_id, left_out in gone.items():
            count, first, last = out[body_id]
            count -= len(left_out)
            if count <= 0:
                del out[body_id]
                continue
            # A bound moves only when a replaced entry held it: then the nearest one left.
            where = (chain_id, body_id, lo, hi, since_us)
            if first in left_out.values():
                first = self._bound(where, left_out, last=False)
            if last in left_out.values():
                last = self._bound(where, left_out, last=True)
            out[body_id] = (count, first, last)
        return out

    def _bound(
        self, where: tuple[int, int, int, int, int], left_out: Mapping[int, int], *, last: bool
    ) -> int:
        """The time of a body's first (or last) entry in a range (``where``: chain id, body id,
        lowest and past the highest index, since µs) that is not ``left_out``; by index, from
        the range's end, on the chain's index: entries go in about in time order."""
        order = "DESC" if last else "ASC"
        for idx, at in self._conn.execute(
            "SELECT idx, at FROM entries WHERE chain_id = ? AND body_id = ? AND idx >= ?"
            f" AND idx < ? AND at >= ? ORDER BY idx {order}",
            where,
        ):
            if int(idx) not in left_out:
                return int(at)
        raise AssertionError("a count above zero has an entry left")  # pragma: no cover

    def _base(self, chain_id: int) -> int:
        found = self._conn.execute("SELECT base FROM trees WHERE chain_id = ?", (chain_id,))
        row = found.fetchone()
        return 0 if row is None else int(row[0])

    def report_from(
        self,
        groups: dict[int, tuple[int, int, int]],
        singles: Sequence[tuple[int, int, int]],
        known: bool,
    ) -> ReportData:
        """``ReportData`` from counts by body id (``report_range``, possibly added up over
        several ranges), the bodies and their texts read here."""
        out: list[ReportGroup] = []
        bodies: dict[int, ShownBody] = {}
        texts: dict[str, str] = {}
        for body_id in sorted(groups):  # body order: ties in the report keep it
            body = self.body(body_id)
            bodies[body_id] = body.doc.copy()
            # by the reference the report looks texts up by
            texts[str(body.doc["text_de"])] = body.texts["de"]
            texts[str(body.doc["text_en"])] = body.texts["en"]
            out.append(ReportGroup(bodies[body_id], *groups[body_id]))
        kept = tuple(ReportSingle(seq, at, bodies[body_id]) for seq, at, body_id in singles)
        return ReportData(self.origin, known, tuple(out), kept, texts)

    # -- what an erasure touches, what an audit compares ---------------------------------
    def held_content(self, chain_id: int, device_id: int | None = None) -> int:
        """Entries of the chain (of one device) whose personal content is still held; another
        customer's chain than the bound one holds nothing."""
        own, own_params = self._own()
        where, params = f"chain_id = ? AND {own}", [chain_id, *own_params]
        if device_id is not None:
            where += " AND device_id = ?"
            params.append(device_id)
        row = self._conn.execute(
            f"SELECT count(*) FROM content WHERE seq IN (SELECT seq FROM entries WHERE {where})",
            params,
        ).fetchone()
        return int(row[0])

    def recipients_sent(self, chain_id: int, device_id: int | None = None) -> set[str]:
        """Recipients that were ever sent (shared or altered) anything of the chain (device);
        none for another customer's chain than the bound one."""
        own, own_params = self._own("e.chain_id")
        sql = (
            "SELECT DISTINCT a.value FROM entries e JOIN atoms a ON a.id = e.recipient_id"
            f" WHERE e.chain_id = ? AND {own} AND e.outcome IN (?, ?)"
        )
        params = [chain_id, *own_params, OUTCOMES["shared"], OUTCOMES["altered"]]
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
    ) -> list[tuple[int, bytes, ShownBody, str | None, bytes | None]]:
        """(seq, source digest, body, topic, payload) of every entry in log order."""
        own, params = self._own("e.chain_id")
        return [
            (
                int(seq),
                bytes(source),
                self.body(int(body_id)).doc.copy(),
                topic,
                None if p is None else bytes(p),
            )
            for seq, source, body_id, topic, p in self._conn.execute(
                "SELECT e.seq, e.source, e.body_id, t.topic, c.payload FROM entries e"
                " LEFT JOIN content c ON c.seq = e.seq"
                f" LEFT JOIN topics t ON t.id = c.topic_id WHERE {own} ORDER BY e.seq",
                params,
            ).fetchall()
        ]

    def decided(self, candidates: Sequence[tuple[int, str, str, bytes]], walk: int) -> set[int]:
        """Which of (position, customer, device, SHA-256 of the payload) the log holds a decision
        of: an entry of that customer and device whose keyed source digest
        (``gateway.log.chain.source_commitment``) is that message's, among the device's newest
        ``walk`` entries (gateway/messages/replays.py: retained messages on a new session).

        One walk per device (per 500 of its messages, SQLite's parameter bound), not one per
        message: a device that keeps a thousand distinct retained messages would otherwise cost
        a thousand walks (0.1 s each, with every commit waiting) on each new session — a cost it
        could put on everyone."""
        wanted: dict[tuple[str, str], dict[bytes, list[int]]] = {}
        for position, customer, device, digest in candidates:
            if self.customer is None or customer == self.customer:
                wanted.setdefault((customer, device), {}).setdefault(digest, []).append(position)
        found: set[int] = set()
        conn = self._conn
        for (customer, device), digests in wanted.items():
            row = conn.execute(
                "SELECT c.id, a.id, k.key FROM chains c, atoms a, subject_keys k"
                " WHERE c.name = ? AND a.value = ? AND k.chain_id = c.id AND k.device_id = a.id",
                (customer, device),
            ).fetchone()
            if row is None:
                continue  # nothing of this device in the log (or erased): decide them
            chain_id, device_id, key = row[0], row[1], bytes(row[2])
            # Where the walk stops: the device's walk-th newest entry (index only, fast).
            floor = conn.execute(
                "SELECT seq FROM entries WHERE device_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (device_id, walk - 1),
            ).fetchone()
            looking = {source_commitment(key, d): at for d, at in digests.items()}
            sources = list(looking)
            for start in range(0, len(sources), 500):
                chunk = sources[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT DISTINCT source FROM entries WHERE device_id = ? AND seq >= ?"
                    f" AND chain_id = ? AND source IN ({marks})",
                    (device_id, floor[0] if floor else 0, chain_id, *chunk),
                )
                for (source,) in rows:
                    found.update(looking.get(bytes(source), ()))
        return found
