"""Retained messages on a new session: decided once per publish, not once per session.

A SUBSCRIBE makes the broker send every retained message on the filter at once, flagged
retain=1 (MQTT 3.1.1, 3.3.1.3; the gateway speaks 3.1.1, where a live message always arrives
with retain=0, so retain=1 on the gateway's subscription means "a stored copy, sent because we
subscribed"). On a kept session (CONNACK "session present") the gateway received each of them
live already, and ``gateway.messages.retained.is_replay`` acknowledges them undecided. On a
*new* session nothing says whether the gateway saw them: a first start, or a broker that dropped
the gateway's session — an external broker restarted with sessions lost but retained messages
kept (or restored from elsewhere), a session expired, or a client that connected with the
gateway's client id and a clean session. Decided again, a message withheld while a consent was
withdrawn was forwarded once the consent was given (issue 15).

So a retained message on a new session is looked up in the log first: an entry of the same
customer and device whose source is the same bytes means it was decided, and it is acknowledged
without a second decision (counted with the replays, ``replays_skipped`` in ``einblick
status``). Otherwise it is decided as usual: on a first start it is the only copy.

The lookup is the log's own: each entry stores its device message's SHA-256 keyed by the
device's subject key (``gateway.log.chain.source_commitment``), so it is one walk per device
over its newest ``WALK_LIMIT`` entries for all of its messages in a batch (index
``entries_device``, newest first), on the store's
helper thread, only for retained messages on a new session (a burst once per lost session,
never on the live path). What it cannot see is decided again, as before: a decision further
back than ``WALK_LIMIT`` entries of its device, a device erased since (its subject key is gone,
so the log can no longer tell its messages apart, by design), entries retention removed. And
a device whose identical bytes arrive as a *new* retained publish while the gateway had no
session is taken for the one decided (the log holds a decision of those very bytes).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.backoff import Backoff, database_retry
from gateway.errors import StoreError
from gateway.log.reader import Reader
from gateway.messages.clock import elapsed
from gateway.messages.endpoint import Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.retained import SweepStats
from gateway.messages.store import Store
from policies.engine import Engine

__all__ = ["WALK_LIMIT", "ReplayCheck", "new_session_replay"]

log = logging.getLogger(__name__)

# Entries of one device looked at, newest first, per retained message: a miss walks them all
# (0.1-0.17 s on the store's helper thread on a loaded 2-core box, while commits wait; a recent
# hit 4-18 ms). A retained message decided further back is decided again, as before.
WALK_LIMIT = 100_000


def new_session_replay(message: Inbound) -> bool:
    """A stored retained message the broker sent because a new session subscribed."""
    return message.retain and not message.connection.session_present


@dataclass(slots=True)
class ReplayCheck:
    """Finds the retained messages of a batch the log already holds a decision of."""

    engine: Callable[[], Engine]
    store: Store
    stats: SweepStats  # the retained sweeper's: one count of replays acknowledged undecided
    flood: FloodGuard | None = None  # credited for a wait on the database (``decided``)
    # Why a batch waits for a lookup the database refuses, while it does (``einblick status``
    # shows it as the pipeline failing closed: nothing is decided, acknowledged or forwarded).
    failing: str | None = None

    async def decided(self, batch: Sequence[Inbound]) -> set[int]:
        """Positions in ``batch`` of retained messages on a new session already decided."""
        engine = self.engine()
        candidates: list[tuple[int, str, str, bytes]] = []
        for position, message in enumerate(batch):
            if not new_session_replay(message):
                continue
            device = engine.device_for(message.topic)
            if device is None:
                continue  # no device: withheld again, harmlessly
            digest = hashlib.sha256(message.payload).digest()
            candidates.append((position, device.customer, device.device, digest))
        if not candidates:
            return set()
        path = self.store.path
        backoff: Backoff | None = None  # made on the first failure only
        failing_since = 0.0
        while True:
            try:
                found = await self.store.read(
                    lambda conn: Reader(conn, path, None).decided(candidates, WALK_LIMIT),
                    offload=True,
                )
                break
            except StoreError as exc:
                # Decided again unseen, a message withheld before could now be forwarded: the
                # batch waits, unacknowledged, as for a commit the database refuses.
                backoff = backoff or database_retry()
                failing_since = failing_since or elapsed()
                if self.failing is None:  # said once while it lasts; status shows it all along
                    log.error(
                        "cannot look up retained messages in the log, so nothing is decided "
                        "or forwarded until the database answers: %s",
                        exc,
                    )
                self.failing = f"cannot look up retained messages in the log: {exc}"
                await backoff.sleep()
        if self.failing is not None:
            log.warning("the log answers again; deciding resumes")
            self.failing = None
        if failing_since and self.flood is not None:
            # Nothing was acknowledged meanwhile: the broker hands the devices' messages over at
            # once now, and judged by arrival they would look like a flood (a false reason).
            # Credited as the pipeline does after a commit the database refused.
            now = elapsed()
            self.flood.credit(now - failing_since, now)
        if found:
            self.stats.replays_skipped += len(found)
            log.info(
                "device broker: a new session was sent %d retained message(s) the log already "
                "holds a decision of; acknowledged without deciding them again",
                len(found),
            )
        return found
