"""Grants that began to apply: which overlapping grant a queued release was decided without.

Where several grants give one recipient the same device stream, each leaf leaves in the most
protective treatment any *applying* grant gives it (``policies.combine``). A release waits in
the outbox, and meanwhile another of those grants may begin to apply: its allowed hours begin,
its validity or consent record starts, the customer gives its consent again or lifts an
objection or a restriction. The release was decided without that grant's treatments, so it may
carry a field in a less protective form than the current policy allows, and must be decided
again before it leaves (gateway/messages/sendtime.py).

``began_applying`` finds such a grant in O(number of overlapping grants), without the message:
a grant that applies now (not held back, valid, its key there, inside its hours) and that did
not certainly apply at the decision (outside its hours then, not yet valid then, or held back
until after it). Whether it changes anything is then judged by deciding the message again with
the engine, the same code that combined the grants at decision time: one truth, no second
ordering of treatments here.

What a decision depended on that is not a function of the time or of the holds (a grant's
conditions on the body, its rate limit) is a fact of that decision and stays as it was. A
policy reload changes the version, and every row of an older version is decided again anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import Reason
from policies.engine import Engine

__all__ = ["Onset", "began_applying"]


@dataclass(frozen=True, slots=True)
class Onset:
    """``grant`` applies now but did not when the release was decided, because ``why``:
    ``hours`` (its hours began), ``validity`` (its validity or consent record began), or the
    hold that ended since (Reason ``withdrawn``, ``objected`` or ``restricted``)."""

    grant: CompiledGrant
    why: str
    hold: Reason | None = None


def began_applying(
    engine: Engine, policy: CompiledPolicy, grant_id: str, decided: datetime, now: datetime
) -> Onset | None:
    """The first grant (by id) overlapping ``grant_id`` for its recipient that applies at
    ``now`` and may not have at ``decided``; None when every one that applies now applied then."""
    grant = policy.grant(grant_id)
    if grant is None:
        return None
    customer = policy.customer
    for other_id in grant.overlaps:  # sorted by id (policies.overlaps)
        other = policy.grant(other_id)
        if other is None or other.shadow is None:
            continue  # a body released whole constrains no other grant's fields
        if engine.still_allowed(customer, other_id, now) is not None or not other.in_hours(now):
            continue  # does not apply now: it constrains nothing
        if not other.in_hours(decided):
            return Onset(other, "hours")
        if other.validity_reason(decided) is not None:
            return Onset(other, "validity")
        hold = engine.released_since(customer, other_id, decided)
        if hold is not None:
            return Onset(other, "released", hold)
    return None
