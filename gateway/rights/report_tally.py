"""The access report's counts, kept per customer and extended by the entries verified since.

Counting a customer's entries for the report (one grouped query over their chain) grows with
their log: 12 ms of each build at 40,000 entries, and the portal builds a report for every page
of a customer whose log grows. A ``Tally`` holds the counts of the customer's tree from its
first index up to the size the build's verification covered; the next build counts only the
entries from there up to the size its own verification covers, and adds them.

Counts only ever rest on a verification made in the same read transaction (the caller's):

- a tally is extended only when that verification went *onward* from the tree the previous
  build verified (``gateway.log.onward``): the onward check vouches that nothing below the held
  size was deleted, inserted or re-hashed and checks every entry after it again, so the counted
  prefix is the one now verified;
- anything else — a whole verification (a key rotation, an erasure, compaction, a handover, a
  tree the onward check could not vouch for, and at least every ten minutes), another database,
  chain, tree start or ``since`` — counts the customer's tree again from the start;
- a chain that does not verify is counted up to its first bad entry only;
- a tally is never longer than what the verification covered: a tally past it (a log cut back)
  is counted again.

Bounded: one tally per customer, at most ``LIMIT`` customers, oldest first out; a tally is a
few hundred body ids and the customer's rare entries (consents, erasures), not their entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from gateway.log.reader import Reader
from gateway.log.reports import ChainReport
from gateway.log.results import ReportData

__all__ = ["LIMIT", "Tallies", "Tally", "count_verified"]

LIMIT = 1024  # customers whose tallies are kept


@dataclass(frozen=True, slots=True)
class Tally:
    """A customer's report counts over tree indexes ``start`` <= idx < ``upto``."""

    database: str  # the resolved path of the log database
    customer: str
    chain_id: int
    since_us: int
    start: int
    upto: int
    groups: dict[int, tuple[int, int, int]]  # body id -> (count, first at, last at)
    singles: tuple[tuple[int, int, int], ...]  # (seq, at, body id) of rare entries


class Tallies:
    """Each customer's ``Tally`` as the last build left it (thread-safe: builds run on threads)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Tally] = OrderedDict()
        self.extended = 0  # builds that counted only the new entries (what the tests count)
        self.counted = 0  # builds that counted the customer's whole tree

    def get(self, customer: str) -> Tally | None:
        with self._lock:
            return self._kept.get(customer)

    def put(self, tally: Tally, *, extended: bool) -> None:
        with self._lock:
            self._kept[tally.customer] = tally
            self._kept.move_to_end(tally.customer)
            while len(self._kept) > self._limit:
                self._kept.popitem(last=False)
            if extended:
                self.extended += 1
            else:
                self.counted += 1

    def drop(self, customer: str) -> None:
        with self._lock:
            self._kept.pop(customer, None)


def count_verified(
    reader: Reader,
    customer: str,
    chain: ChainReport | None,
    since_us: int,
    *,
    onward: bool,
    tallies: Tallies | None,
) -> ReportData:
    """``customer``'s report counts over the entries ``chain`` (their verification, made on
    ``reader``'s connection in the same read transaction) covered: ``chain.start`` <= idx <
    ``chain.size``, or below the first bad entry when the chain does not verify. ``onward``: that verification went onward from the previous build's tree,
    so a kept tally up to a size it covers may be extended instead of counted again."""
    chain_id = reader.chain_id(customer)
    if chain_id is None or chain is None:
        if tallies is not None:
            tallies.drop(customer)
        return reader.report_from({}, (), known=chain_id is not None)
    database = str(reader.path.resolve())
    # A broken chain is verified up to its first bad entry only: nothing from there on counts.
    upto = (
        chain.size
        if chain.problem is None
        else max(chain.start, min(chain.size, chain.problem.index))
    )
    kept = None if tallies is None or not onward else tallies.get(customer)
    if (
        kept is not None
        and kept.database == database
        and kept.chain_id == chain_id
        and kept.since_us == since_us
        and kept.start == chain.start
        and kept.upto <= upto
    ):
        groups = dict(kept.groups)
        new, singles = reader.report_range(chain_id, since_us, kept.upto, upto)
        for body_id, (count, first, last) in new.items():
            had = groups.get(body_id)
            groups[body_id] = (
                (count, first, last)
                if had is None
                else (had[0] + count, min(had[1], first), max(had[2], last))
            )
        all_singles = (*kept.singles, *singles)
        extended = True
    else:
        groups, fresh = reader.report_range(chain_id, since_us, chain.start, upto)
        all_singles = tuple(fresh)
        extended = False
    if tallies is not None:
        tally = Tally(
            database, customer, chain_id, since_us, chain.start, upto, groups, all_singles
        )
        tallies.put(tally, extended=extended)
    # Kept as counted (a later build extends them); what a send-time decision replaced is left
    # out of each build: a message counts once, as what last decided it.
    settled = reader.without_superseded(chain_id, groups, since_us, chain.start, upto)
    return reader.report_from(settled, all_singles, known=True)
