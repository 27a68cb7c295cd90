"""Release at the end of the unit: delivery time must not undo a truncated time.

A grant that truncates a time to the hour (``ts: {truncate: hour}``) promises the recipient learns
only the hour. Delivered within milliseconds, each message's arrival tells the minute and second
all the same. With ``release: end_of_unit`` (policies/model.py) a release waits in the outbox
until the end of that hour (or day, the coarsest unit the grant truncates to) on the clock of
the policy's timezone and on UTC's, whichever ends later, and every release of that hour leaves
together, in order.

``release_at`` is computed when the release is committed and stored with its outbox row; the
forwarder holds the row until then (gateway/messages/forwarder.py) and the send-time check
decides it again under the policy in force when it leaves (gateway/messages/sendtime.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from gateway.log.entry import us_from_at
from policies.decision import Decision
from policies.engine import Engine

__all__ = ["end_of_unit", "release_at"]


def end_of_unit(now: datetime, unit: str, zone: str) -> datetime:
    """The end of the hour or day ``now`` lies in (aware, in ``now``'s zone), on whichever clock
    ends it later: ``zone``'s or UTC's. A time truncates on either (an ISO time with an offset
    on its own clock, an epoch value in UTC), so the hold lasts until both units are over."""
    return max(_end(now, unit, ZoneInfo(zone)), _end(now, unit, UTC)).astimezone(now.tzinfo)


def _end(now: datetime, unit: str, zone: tzinfo) -> datetime:
    local = now.astimezone(zone)
    if unit == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        # In UTC: an hour is an hour, also the one a clock change repeats.
        return start.astimezone(UTC) + timedelta(hours=1)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # A calendar day, not 24 h: days of a clock change are 23 or 25 h long.
    return (start + timedelta(days=1, hours=3)).replace(hour=0).astimezone(UTC)


def release_at(engine: Engine, decision: Decision, now: datetime) -> int | None:
    """When the row for ``decision`` may leave (µs since the epoch), or None: at once."""
    policy = engine.policy(decision.customer or "")
    grant = policy.grant(decision.grant) if policy is not None and decision.grant else None
    unit = grant.spec.release_unit if grant is not None else None
    if unit is None or policy is None:
        return None
    return us_from_at(end_of_unit(now, unit, policy.timezone))
