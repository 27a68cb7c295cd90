"""Pages of the log: keyset pages by ``seq``, counts, the sparse index, find and jump by time.

What the TUI's live log and ``einblick log`` scroll through; never an OFFSET over the whole log
(``skip`` is at most one stride of the caller's sparse index).
"""

from __future__ import annotations

from gateway.log.reader.base import LINE_COLUMNS, ReaderBase, entry_line
from gateway.log.results import EntryFilter, EntryLine, EntryRow, LogState

__all__ = ["PageQueries"]


class PageQueries(ReaderBase):
    """Entries page by page, within the bound customer."""

    def latest_seq(self) -> int:
        if self.customer is None:
            row = self._conn.execute("SELECT max(seq) FROM entries").fetchone()
            return 0 if row[0] is None else int(row[0])
        # The chain's newest entry is its highest index: one step down the (chain, index)
        # index. max(seq) read every index entry of the chain (a customer's portal page and
        # live poll paid that at every call).
        own, params = self._own()
        row = self._conn.execute(
            f"SELECT seq FROM entries WHERE {own} ORDER BY idx DESC LIMIT 1", params
        ).fetchone()
        return 0 if row is None else int(row[0])

    def log_state(self) -> LogState:
        """Where the bound customer's log stands (unbound: the newest entry of all): a step down
        an index each, whatever the log's size (the portal asks it before serving a report)."""
        own, params = self._own()
        checkpoint = self._conn.execute(
            f"SELECT id FROM checkpoints WHERE {own} ORDER BY size DESC, id DESC LIMIT 1", params
        ).fetchone()
        key = self._conn.execute("SELECT max(id) FROM keys").fetchone()
        return LogState(
            self.latest_seq(),
            0 if checkpoint is None else int(checkpoint[0]),
            0 if key is None or key[0] is None else int(key[0]),
        )

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
        sql = f"SELECT {LINE_COLUMNS}, ({hit_sql}) FROM entries WHERE seq >= ? AND {where}"
        args: list[object] = [*hit_params, lo, *params]
        if hi is not None:
            sql += " AND seq <= ?"
            args.append(hi)
        # Bound to one customer, the chain's index orders their rows as seq does (both grow
        # with every append) and is walked from either end; by seq, SQLite sorted the whole
        # chain for every page (a temp B-tree: seconds per page at 100,000s of entries).
        # Withheld entries alone: the partial index of withheld entries per chain (migration 9),
        # which holds them in seq order (its rowid); by idx it would sort them all.
        withheld_only = flt is not None and set(flt.outcomes) == {"withheld"}
        order = "idx" if self.customer is not None and not withheld_only else "seq"
        sql += f" ORDER BY {order} {'DESC' if newest_first else 'ASC'} LIMIT ? OFFSET ?"
        args += [limit, skip]
        return [entry_line(r, bool(r[8])) for r in self._conn.execute(sql, args)]

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
        """The first seq (of the bound customer's) whose time is at or after ``at_us``, or one
        past their last entry (times rise with seq)."""
        own, params = self._own()
        bounds = self._conn.execute(
            f"SELECT min(seq), max(seq) FROM entries WHERE {own}", params
        ).fetchone()
        if bounds[0] is None:
            return 0
        lo, hi = int(bounds[0]), int(bounds[1]) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = self._conn.execute(
                f"SELECT seq, at FROM entries WHERE seq >= ? AND {own} ORDER BY seq LIMIT 1",
                [mid, *params],
            ).fetchone()
            if row is None or row[1] >= at_us:
                hi = mid
            else:
                lo = int(row[0]) + 1
        return lo

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
