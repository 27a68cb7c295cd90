"""The cyclic garbage collector's settings for a running gateway.

CPython's defaults run a young collection every 700 net allocations of container objects and a
full one whenever the objects promoted since the last full collection reach a quarter of the
old generation. On the hot path that is the wrong trade: a batch keeps up to ``batch_max``
messages' objects (the message, its decisions, drafts and outbox rows) alive across the commit's
await, so they survive the young collections, are promoted, and trigger full collections that
walk the whole heap (the compiled policies, Babel's locale data, the caches), although reference
counting frees them a moment later: nearly nothing on the hot path forms a reference cycle.

Measured while the gateway drained a backlog (``einblick bench --rates 0``, 2026-12-03): with the
defaults the collector took 3.7 s of the gateway's 7.7 s of CPU, nine full collections of ~285 ms
each; with the heap frozen after start-up and young collections every 20,000 allocations, 1.0 s
and no full collection.

``settle`` is called once, when start-up is done (``gateway.app``): what exists then lives as
long as the process, so it is moved out of the collector's sight (``gc.freeze``); cycles made
later are still found, only less often. A process that is not a gateway (the tests, the TUI)
keeps the defaults.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

# Net container allocations between young collections (CPython's default: 700). In the run the
# module text describes, 65 young collections took 0.78 s in all: ~12 ms each, a bounded pause.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Freeze what start-up built and collect young objects less often (the module text)."""
    gc.collect()  # garbage of the start-up goes now, not frozen for ever
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
