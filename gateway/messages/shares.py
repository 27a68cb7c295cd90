"""A release asks its customer's share of its recipient's queue before it is queued.

Each recipient's queue is shared among the customers whose running policy has a grant to it
(``gateway/messages/quota.py`` keeps the counts); a release past its customer's share is turned
into a withheld decision here, with reason ``recipient_queue_full`` and every path it would have
carried listed as withheld, so the entry says what stayed and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.messages.quota import Admission, QueueStatus, RecipientQueues
from policies.decision import Decision, Outcome, Reason
from policies.engine import Engine

__all__ = ["QueueShares"]


class QueueShares:
    """The queues' shares as the running policies' grants divide them."""

    def __init__(self, queues: RecipientQueues) -> None:
        self.queues = queues
        # The engine, and its generation, whose grants the shares follow: a hot reload changes
        # the policies of the same engine in place.
        self._shared_by: tuple[Engine, int] | None = None

    def admit(self, engine: Engine, decision: Decision, taken: list[Admission]) -> Decision:
        """The decision as it stands once its customer's share of its recipient's queue has been
        asked. What the queues counted is added to ``taken``: the caller gives it back (``undo``)
        if the batch does not commit."""
        self._follow_grants(engine)
        if (
            decision.payload is None
            or decision.outcome is Outcome.WITHHELD
            or decision.recipient is None
        ):
            return decision
        admission = self.queues.admit(
            decision.recipient, decision.customer or "", len(decision.payload)
        )
        taken.append(admission)
        if admission.admitted:
            return decision
        # Everything this release would have carried is withheld, and the entry says why.
        paths = (*decision.shared, *(a.path for a in decision.altered), *decision.withheld)
        return dataclasses.replace(
            decision,
            outcome=Outcome.WITHHELD,
            topic=None,
            payload=None,
            shared=(),
            altered=(),
            withheld=tuple(dict.fromkeys(paths)),
            reason=Reason("recipient_queue_full"),
        )

    def undo(self, taken: Sequence[Admission]) -> None:
        """The batch did not commit: what its admissions counted does not exist."""
        for admission in taken:
            self.queues.undo(admission)

    def status(self, engine: Engine, recipient: str) -> QueueStatus:
        """``recipient``'s queue and each customer's share of it, as the policies now stand."""
        self._follow_grants(engine)
        return self.queues.status(recipient)

    def _follow_grants(self, engine: Engine) -> None:
        """Asked again whenever the policies changed (a new engine, or one reloaded in place)."""
        shared_by = self._shared_by
        if shared_by is not None and shared_by[0] is engine and shared_by[1] == engine.generation:
            return
        sharers: dict[str, set[str]] = {}
        for policy in engine.policies():
            for grant in policy.grants:
                sharers.setdefault(grant.recipient, set()).add(policy.customer)
        self.queues.set_sharers(sharers)
        self._shared_by = (engine, engine.generation)
