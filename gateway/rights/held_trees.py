"""What the access report keeps between builds: per customer, their tree as last verified.

The portal builds a customer's report again on every change of their log
(``gateway.operations.portal.reports``); each build verifies their tree. ``HeldTrees`` keeps
the ``gateway.log.onward.Verified`` state the last build ended with, so the next verifies only
what is new (``gateway.log.onward.verify_customer``). A held state is used for at most
``whole_every`` after the whole verification it descends from: then the tree is verified whole
again, so a change below the held size that the onward check's cheap tests cannot see is found
within that time, as ``einblick verify`` would find it.

One state per customer (a few KB: at most 64 hashes), keyed by the customer and naming them
inside; a state of another customer, database or key is never used (``verify_customer`` checks).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from gateway.log.onward import Verified

__all__ = ["WHOLE_EVERY", "HeldTrees"]

WHOLE_EVERY = timedelta(minutes=10)


class HeldTrees:
    def __init__(self, whole_every: timedelta = WHOLE_EVERY) -> None:
        self._whole_every = whole_every
        self._lock = threading.Lock()  # builds run on worker threads
        self._held: dict[str, tuple[Verified, datetime]] = {}
        self.onward = 0  # builds verified onward (what the tests and benches count)
        self.whole = 0  # builds verified whole

    def get(self, customer: str, now: datetime) -> Verified | None:
        """The state to verify ``customer``'s tree onward from (None: verify it whole)."""
        with self._lock:
            found = self._held.get(customer)
        if found is None or found[0].customer != customer or now - found[1] >= self._whole_every:
            return None
        return found[0]

    def put(self, customer: str, held: Verified | None, now: datetime, *, onward: bool) -> None:
        """Keep what a build ended with; ``onward``: it went on from the state ``get`` gave,
        so the time of the whole verification it descends from stays."""
        with self._lock:
            if onward:
                self.onward += 1
            else:
                self.whole += 1
            if held is None:
                self._held.pop(customer, None)
                return
            since = self._held[customer][1] if onward and customer in self._held else now
            self._held[customer] = (held, since)
