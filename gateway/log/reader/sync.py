"""``Reader``: the synchronous reader, every query of the log in one object.

Its parts live beside it, one concept each: ``base`` (connection, customer restriction, names,
bodies, filters), ``pages`` (keyset pages, counts, find), ``proofs`` (keys, checkpoints, one
entry's proof and detail), ``tallies`` (statistics, report data, erasure and audit counts).
"""

from __future__ import annotations

from gateway.log.reader.pages import PageQueries
from gateway.log.reader.proofs import ProofQueries
from gateway.log.reader.tallies import TallyQueries

__all__ = ["Reader"]


class Reader(PageQueries, ProofQueries, TallyQueries):
    """A synchronous, read-only view of the log database, optionally bound to one customer."""
