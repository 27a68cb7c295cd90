"""Judging grants at several moments while the system clock is behind the log's time.

The gateway dates every decision at the log's time, never before its newest entry, so a clock
stepped back cannot revive a consent that has expired (``gateway/messages/clock.py``). But while
the clock is behind, the log's time stands still at that newest entry, and no one time can be
trusted: judged at the log's time alone, a grant's allowed hours would be judged at one frozen
moment for as long as the clock stays behind (all night, if it froze at noon), and a grant or
consent that comes into force later than the real time would count as in force if a clock once
stepped forward carried the log's time ahead of it. So the gateway names other moments the real
time may be (the clock's reading, and the clock's last good reading carried forward by the time
since, or "some time later" when it has none: ``ForwardClock.also_at``), and a grant releases
only what it releases at all of them.

A grant *applies* at a moment when it is in force then (its validity and its consent) and the
moment lies inside its allowed hours. Where a grant that could give the recipient something
applies at one of the moments and not at another, the recipient gets nothing, with the reason
``clock_behind``, which names the grant and what differs. When every such grant applies, or
does not, at all of them, the decision is the one the log's time gives. What holds whatever
the time leaves a grant out: a hold (a consent withdrawn, an objection, a restriction), or a
condition of its own the message does not meet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from policies.body import JSON, Parsed
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import Reason

__all__ = ["clock_behind", "could_apply", "differs", "overlapping"]


def differs(
    grant: CompiledGrant, now: datetime, at: datetime | None, hours: datetime
) -> str | None:
    """What of ``grant`` makes it apply at one of ``now`` (the log's time) and ``at`` and not at
    the other: ``"validity"``, ``"consent"`` or ``"hours"``; None when it applies at both or at
    neither. ``hours``: the moment its allowed hours are judged at instead of ``now`` (a held
    release), shifted by the same distance for ``at``. ``at`` None: some time after ``now``,
    nobody knows how long after (no good reading of the clock since the gateway started); then
    its hours cannot be judged, nor a bound of its validity or consent that lies after ``now``."""
    if at is None:
        return _after(grant, now)
    valid_now, valid_at = grant.validity_reason(now), grant.validity_reason(at)
    inside_now = grant.in_hours(hours)
    inside_at = grant.in_hours(at + (hours - now)) if grant.hours is not None else True
    if (valid_now is None and inside_now) == (valid_at is None and inside_at):
        return None
    if (valid_now is None) != (valid_at is None):
        which = valid_now if valid_now is not None else valid_at
        assert which is not None
        return which.params.get("what", "validity")
    return "hours"


def _after(grant: CompiledGrant, now: datetime) -> str | None:
    """What of ``grant`` may change at an unknown time after ``now`` (``differs``); nothing for
    a grant whose validity or consent has ended by ``now``: it applies at no later time."""
    consent = grant.consent
    ends = (grant.valid_until, consent.until if consent is not None else None)
    if any(end is not None and end <= now for end in ends):
        return None
    if any(bound is not None and bound > now for bound in (grant.valid_from, grant.valid_until)):
        return "validity"
    if consent is not None and any(
        bound is not None and bound > now for bound in (consent.given_at, consent.until)
    ):
        return "consent"
    return "hours" if grant.hours is not None else None


def clock_behind(
    grants: Iterable[CompiledGrant],
    now: datetime,
    also: Sequence[datetime | None],
    hours: datetime | None = None,
) -> tuple[CompiledGrant, Reason] | None:
    """The first of ``grants`` that applies at ``now`` and not at one of ``also``, or the other
    way round, with the reason ``clock_behind`` naming it and what differs; None when all of
    them agree (always when ``also`` is empty: the clock is not behind). The reason carries no
    reading of the clock: it changes by the minute, and a text that repeats is stored once."""
    for grant in grants:
        for at in also:
            what = differs(grant, now, at, hours or now)
            if what is not None:
                return grant, Reason("clock_behind", {"what": what, "grant": grant.id})
    return None


def could_apply(
    grants: Iterable[CompiledGrant],
    held: Callable[[str], object],
    parsed: Parsed | None,
    max_payload: int | None = None,
) -> list[CompiledGrant]:
    """Those of ``grants`` whatever the time may let apply to the message: not held back
    (``held(grant_id)`` falsy) and with every condition of their own met by its body (``parsed``
    None: the body is not at hand, its conditions unknown, each counts); none for a body over
    ``max_payload`` (every grant withholds it, at any time)."""
    if parsed is not None and max_payload is not None and len(parsed.raw) > max_payload:
        return []
    found = []
    for grant in grants:
        if held(grant.id):
            continue
        if (
            grant.conditions
            and parsed is not None
            and (parsed.parse() != JSON or not all(c.holds(parsed.root) for c in grant.conditions))
        ):
            continue
        found.append(grant)
    return found


def overlapping(policy: CompiledPolicy, grant_id: str) -> list[CompiledGrant]:
    """``grant_id`` and the grants that give its recipient one of its device streams: those
    whose applying together decides what a release of it holds (``policies.combine``)."""
    grant = policy.grant(grant_id)
    if grant is None:
        return []
    found = [grant]
    for other in grant.overlaps:
        got = policy.grant(other)
        if got is not None:
            found.append(got)
    return found
