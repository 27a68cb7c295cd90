"""The one reader of the log: every query on the log's tables outside the writer and the verifier.

A ``Reader`` is synchronous and owns one read-only connection (``mode=ro``, ``query_only``; WAL
lets it read while the writer writes); use it from one thread at a time (the TUI's worker thread,
the report and bundle commands). ``LogReader`` is the same reader for asyncio: every call runs on
the reader's own thread.

Bound to a customer (``customer=``), a reader never returns another customer's rows: every
statement on ``entries``, ``checkpoints``, ``bodies``, ``names``, ``content`` and
``subject_keys`` carries the restriction to that customer's chain, in SQL, whatever filter the
caller passes. A customer's view stands on this, not on the UI.

Pages are keyset-paginated by ``seq`` (never an OFFSET over the whole log); filters use the
entries' indexes on chain, device and recipient; bodies and texts repeat, so they are read once
and kept. What comes back is typed: the frozen dataclasses of ``gateway.log.results``.
"""

# The reader's API, importable from here as before the split (its result types:
# gateway.log.results). Re-exported by name, not in ``__all__``: each name's home is its module
# (tests/packaging/test_exports.py).
from gateway.log.reader.base import row_passes as row_passes
from gateway.log.reader.front import LogReader as LogReader
from gateway.log.reader.proofs import MAX_WALK as MAX_WALK
from gateway.log.reader.sync import Reader as Reader
