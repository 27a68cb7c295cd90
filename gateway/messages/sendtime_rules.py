"""The send-time check's rules for one row (gateway/messages/sendtime.py): when it is stale, when
its allowed hours are judged, when a summary is the one the current grant would make, how a row
is decided again, and when the system clock disagrees with the log's time about its grant.

When the allowed hours are judged. A row leaves only inside its grant's hours, judged at send
time: one decided at 21:30 under hours 06:00-22:00 whose recipient is away until 22:03 is
withheld, and its entry says the hours ended before it could be sent. A release held to the end
of its unit (``release: end_of_unit``, gateway/messages/release.py) is the exception: the gateway
holds it, by the policy's own rule, until the hour (or day) is over, and that end is often the
hours' end itself (22:00 is outside 06:00-22:00). Judged then, every release of the last allowed
hour would be withheld, by the gateway's own doing. So a held row that leaves on time has its
hours judged at its decision, and leaves with the rest of its hour: on time means its grant in
the current policy still holds releases to the end of the unit, its recipient has been
reachable since before the hold ended, and the check runs at most ``HELD_ON_TIME_S`` after the end
(an hour's releases leave together; a backlog, or a stall on this side, that takes longer is
no longer the hold's doing). Everything else about it (its version, consent, validity,
objections) is judged at send time as for any row. A held row that does not leave on time is
judged at send time like any other: outside the hours it is withheld, and its entry says so.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

import orjson

from gateway.log.entry import at_from_us, us_from_at
from gateway.messages.outbox import OutboxRow
from policies.body import Parsed
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import Alteration, Decision, Outcome, Reason
from policies.engine import Engine, PseudonymKeys
from policies.errors import PolicyError
from policies.message import Message
from policies.model import HELD_ON_TIME_S
from policies.moments import clock_behind, could_apply, overlapping
from policies.sparkplug import PREFIX as SPARKPLUG_PREFIX

__all__ = ["behind", "evaluate_alone", "hours_at", "same_release", "stale"]


def hours_at(
    row: OutboxRow, grant: CompiledGrant | None, now: datetime, reachable_us: int | None
) -> datetime:
    """The moment ``row``'s allowed hours are judged at (the module text): its decision when it
    leaves on time, ``grant`` being its grant in the current policy and ``reachable_us`` since
    when its recipient has been reachable (µs since the epoch; None: not known); else ``now``."""
    held = row.release_at
    if held is None or reachable_us is None or reachable_us > held:
        return now
    if grant is None or grant.spec.release_unit is None:
        return now  # the current policy no longer holds it: the exception's ground is gone
    if 0 <= us_from_at(now) - held <= HELD_ON_TIME_S * 1_000_000:
        return at_from_us(row.created)
    return now


def stale(
    engine: Engine,
    policy: CompiledPolicy | None,
    grant: CompiledGrant | None,
    row: OutboxRow,
    now: datetime,
    *,
    hours: datetime,
) -> bool:
    """True when ``row`` may not leave as it was decided, with its policy and grant already
    looked up; ``hours``: the moment its allowed hours are judged at (``hours_at``)."""
    if policy is None:
        return True
    if row.version is not None and row.version != policy.version:
        return True
    if grant is None or engine.holds_back(row.customer, grant, now) is not None:
        return True
    return grant.hours is not None and not grant.in_hours(hours)


def same_release(grant: CompiledGrant, row: OutboxRow) -> tuple[Alteration, ...]:
    """What a summary row holds, field by field, if the current grant would make a summary
    like it (same recipient, same window, every field and function in it still aggregated: a
    field removed from the grant is not sent); else nothing. A row queued by an earlier release
    (no version) is never judged the same: nothing says what it was decided under. The fields
    are what the entry of its decision taken again names (it replaces the first entry in the
    counts, ``supersedes``): each aggregated by its functions over the grant's window (the
    number of samples, which the first entry's words gave, is not in the row)."""
    spec = grant.aggregate
    if grant.recipient != row.recipient or spec is None or row.version is None:
        return ()
    try:
        body = orjson.loads(row.payload)
        window = body["window"]
        start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return ()
    if not isinstance(body, dict) or (end - start).total_seconds() != spec.window:
        return ()
    fields = []
    for path, results in body.items():
        if path == "window":
            continue
        allowed = spec.fields.get(path)
        if allowed is None or not isinstance(results, dict) or not set(results) <= set(allowed):
            return ()
        fields.append(Alteration(path, "aggregate", f"{', '.join(results)}; {spec.window:g} s"))
    return tuple(fields)


def behind(
    engine: Engine, row: OutboxRow, now: datetime, also: Sequence[datetime | None], hours: datetime
) -> Reason | None:
    """``clock_behind`` while the system clock is behind the log's time (``also``: the other
    moments grants are judged at then) and the row's grant, or one overlapping it on the row's
    stream that could apply to its message (not held back, its conditions met where the stored
    source can tell), applies at one moment and not at another (``policies.moments``); else
    None. A summary is judged by its own grant (already the most protective form). ``hours`` as
    for ``stale``."""
    policy = engine.policy(row.customer) if also else None
    grant = policy.grant(row.grant) if policy is not None else None
    if policy is None or grant is None:
        return None
    grants = overlapping(policy, row.grant)
    body: Parsed | None = None  # conditions unknown: each grant not held back counts
    if row.source is None or row.source_topic is None:
        # A summary, or a row whose message was too large to keep: its stream unknown, its
        # device known.
        grants = grants[:1] if grant.aggregate is not None else grants
        grants = [g for g in grants if row.device in g.devices]
    else:
        ref = engine.device_for(row.source_topic)
        if ref is not None:
            grants = [g for g in grants if g.covers(ref.device, ref.stream)]
        if not row.source_topic.startswith(SPARKPLUG_PREFIX):
            body = Parsed(row.source)  # (a Sparkplug row's is read against a BIRTH elsewhere)
    held = functools.partial(engine.held, row.customer)
    found = clock_behind(could_apply(grants, held, body), now, also, hours)
    return None if found is None else found[1]


def evaluate_alone(
    engine: Engine,
    policy: CompiledPolicy,
    row: OutboxRow,
    now: datetime,
    hours: datetime,
    *,
    keys: PseudonymKeys,
) -> Decision | None:
    """The current policy's decision for the row's recipient, from the row's source."""
    assert row.source is not None and row.source_topic is not None
    # Its own engine: the running one would count this row again in rate limits and
    # aggregation windows (sendtime.py's module text).
    alone = Engine([policy], keys)
    for (customer, grant), at in engine.withdrawn().items():
        if customer == row.customer:
            try:
                # With its reason: an objection or restriction is not a consent withdrawn.
                alone.withdraw(customer, grant, at, engine.still_allowed(customer, grant, at))
            except PolicyError:
                continue  # withdrawn grant the current version does not have
    message = Message(row.source_topic, row.source, at_from_us(row.created), row.retain)
    # A recipient may get one release per grant (policies.combine): the row's own grant's,
    # else the recipient's decision that nothing leaves.
    decisions = alone.evaluate(message, now, hours_at=hours)
    mine = [d for d in decisions if d.recipient == row.recipient]
    same = [d for d in mine if d.grant == row.grant]
    held = [d for d in mine if d.outcome is Outcome.WITHHELD]
    chosen = same or held
    return chosen[0] if chosen else None
