"""Grants that began or stopped to apply: which overlapping grant a queued release was decided
without, or with.

Where several grants give one recipient the same device stream, each leaf leaves in the most
protective treatment any *applying* grant gives it (``policies.combine``). A release waits in
the outbox, and meanwhile another of those grants may begin to apply: its allowed hours begin,
its validity or consent record starts, the customer gives its consent again or lifts an
objection or a restriction. The release was decided without that grant's treatments, so it may
carry a field in a less protective form than the current policy allows, and must be decided
again before it leaves (gateway/messages/sendtime.py).

``began_applying`` finds every such grant in O(number of overlapping grants), without the message:
a grant that applies now (not held back, valid, its key there, inside its hours) and that did
not certainly apply at the decision (outside its hours then, not yet valid then, or held back
until after it). Whether it changes anything is then judged by deciding the message again with
the engine, the same code that combined the grants at decision time: one truth, no second
ordering of treatments here.

The other direction: ``stopped_applying`` finds every grant that certainly applied at the decision
(inside its hours, valid, not held back then) and does not apply now (its hours ended, its
validity or consent record ended, it was withdrawn, objected to or restricted since). A grant
whose pseudonym key was erased is not named: an erasure never makes a queued row less
protective. The release may carry a field in a *more* protective form than the
current policy gives it; deciding it again with the engine gives exactly what the current
policy releases. "Certainly": a grant held back now is known to have applied at the decision
only when its hold began after the decision and the hold before it (if one ended after the
decision) began after the decision too, and so on for every hold that ended since (the engine
keeps them; a restart hands every recorded event back, gateway/rights/consent.py). Where the
engine knows only when such a hold ended, the grant is not named: the release stays as decided,
at most more protective than needed.

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
from policies.grant_holds import HOLDS_KEPT

__all__ = ["Change", "Onset", "Stop", "all_apply", "began_applying", "stopped_applying"]


@dataclass(frozen=True, slots=True)
class Onset:
    """``grant`` applies now but did not when the release was decided, because ``why``:
    ``hours`` (its hours began), ``validity`` (its validity or consent record began), or the
    hold that ended since (Reason ``withdrawn``, ``objected`` or ``restricted``)."""

    grant: CompiledGrant
    why: str
    hold: Reason | None = None


def began_applying(
    engine: Engine,
    policy: CompiledPolicy,
    grant_id: str,
    decided: datetime,
    now: datetime,
    *,
    hours_at: datetime | None = None,
) -> tuple[Onset, ...]:
    """Every grant (by id) overlapping ``grant_id`` for its recipient that applies at ``now``
    and may not have at ``decided``; none when every one that applies now applied then. All of
    them, not the first: the entry that re-decides the row names each one. ``hours_at``: the
    moment allowed hours are judged at instead of ``now`` (``Engine.evaluate``)."""
    hours_now = hours_at or now
    grant = policy.grant(grant_id)
    if grant is None:
        return ()
    customer = policy.customer
    found: list[Onset] = []
    for other_id in grant.overlaps:  # sorted by id (policies.overlaps)
        other = policy.grant(other_id)
        if other is None or other.shadow is None:
            continue  # a body released whole constrains no other grant's fields
        if engine.still_allowed(customer, other_id, now) is not None:
            continue  # does not apply now: it constrains nothing
        if not other.in_hours(hours_now):
            continue
        if not other.in_hours(decided):
            found.append(Onset(other, "hours"))
        elif other.validity_reason(decided) is not None:
            found.append(Onset(other, "validity"))
        elif (hold := engine.released_since(customer, other_id, decided)) is not None:
            found.append(Onset(other, "released", hold))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Stop:
    """``grant`` applied when the release was decided and does not now, because ``why``:
    ``hours`` (its hours ended), ``validity`` (its validity ended; ``reason`` says whether of the
    grant or of its consent record), or ``held`` (withdrawn,
    objected to or restricted since: ``reason``)."""

    grant: CompiledGrant
    why: str
    reason: Reason | None = None


# A grant that began or stopped to apply while a release waited.
Change = Onset | Stop


def stopped_applying(
    engine: Engine,
    policy: CompiledPolicy,
    grant_id: str,
    decided: datetime,
    now: datetime,
    *,
    hours_at: datetime | None = None,
) -> tuple[Stop, ...]:
    """Every grant (by id) overlapping ``grant_id`` for its recipient that certainly applied at
    ``decided`` and does not at ``now``; none when there is none. ``hours_at`` as for
    ``began_applying``."""
    hours_now = hours_at or now
    grant = policy.grant(grant_id)
    if grant is None:
        return ()
    customer = policy.customer
    found: list[Stop] = []
    for other_id in grant.overlaps:  # sorted by id (policies.overlaps)
        other = policy.grant(other_id)
        if other is None or other.shadow is None:
            continue  # a body released whole constrains no other grant's fields
        blocked = engine.still_allowed(customer, other_id, now)
        if blocked is None and other.in_hours(hours_now):
            continue  # applies now: it did not stop
        if not other.in_hours(decided) or other.validity_reason(decided) is not None:
            continue  # did not apply at the decision either
        if not _free_at(engine, customer, other_id, decided):
            continue
        if blocked is None:
            found.append(Stop(other, "hours"))
        elif engine.held(customer, other_id) is not None:
            found.append(Stop(other, "held", blocked))
        elif blocked.code != "erased":
            # (An erased pseudonym key is not named: a row that left with a pseudonym is not
            # re-released in a less protective form because of the erasure.)
            found.append(Stop(other, "validity", blocked))
    return tuple(found)


def all_apply(engine: Engine, policy: CompiledPolicy, grant_id: str, now: datetime) -> bool:
    """True when every grant overlapping ``grant_id`` that ``stopped_applying`` looks at applies
    at ``now``: then none stopped, for any decision time (one answer per batch of rows)."""
    grant = policy.grant(grant_id)
    if grant is None:
        return True
    for other_id in grant.overlaps:
        other = policy.grant(other_id)
        if other is None or other.shadow is None:
            continue
        if engine.still_allowed(policy.customer, other_id, now) is not None:
            return False
        if not other.in_hours(now):
            return False
    return True


def _free_at(engine: Engine, customer: str, grant_id: str, at: datetime) -> bool:
    """True when ``grant_id`` was certainly not held back at ``at``: neither the hold in force
    now nor any that ended since covered it (each ended one's beginning known)."""
    held = engine.held(customer, grant_id)
    if held is not None and held[0] <= at:
        return False
    ended = engine.ended_holds(customer, grant_id)
    if len(ended) == HOLDS_KEPT and (ended[0][0] is None or at < ended[0][0]):
        return False  # older holds were forgotten: not certain
    return all(end <= at or (began is not None and began > at) for began, end, _ in ended)
