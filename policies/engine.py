"""The engine: one message in, its decisions out (each recipient's releases, or one decision
saying why nothing leaves for it), default deny at every step.

For a message the engine finds the device by topic (precompiled patterns, exact topics in a
dict), parses the body once (``orjson``), and for each recipient named in the customer's grants
tries every grant that covers the device and stream. Each grant that applies now releases what
it names, to its own topic for its own purpose — one decision per releasing grant, by grant
id — and where several applying grants for the recipient name one leaf it leaves in the most
protective of their treatments (``policies.combine``; a field an applying aggregate grant
summarises leaves only as its summary). When nothing leaves, one decision says why: a sample
taken by an aggregate grant first ("being summarised"), else the reason of the first grant by
id. So the order of the grants in the file never changes an outcome. A grant is checked in
this order:

    withdrawn -> validity window and consent record -> pseudonym key erased -> hours
    (while the system clock is behind the log's time: at both moments, ``policies.moments``)
    -> body too large -> opaque release | not UTF-8 -> not JSON -> conditions
    -> aggregate (withheld now, released by ``flush``) | field walk -> rate limit -> release

State kept between messages is small and explicit: the holds on grants (consent withdrawn,
objection, restriction; ``policies.grant_holds``), the time each
(grant, device) last released (rate limits), open aggregation windows, and Sparkplug B
BIRTH state (``policies/sparkplug.py``: a ``spBv1.0/…`` message is decoded against its BIRTH
into ``{metric name: value}`` before the grants see it; DATA before BIRTH is ``no_birth``). ``evaluate``
never raises: any failure is a WITHHELD decision with Reason ``internal_error`` (and the
traceback in the log).

Numbers leave exactly as they arrived (``orjson`` reads ``23.20`` as ``23.2`` and refuses
``1e999``): the fields a grant releases are taken from a second, literal-keeping parse
(``policies.numbers``) and written back as the device wrote them.

Its parts: the route table (``policies.routes``), the parsed body (``policies.body``), the
decisions it builds (``policies.verdicts``) and the aggregation windows (``policies.windows``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from policies.body import BAD_UTF8, JSON, UNPARSED, WHOLE, Parsed
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import Decision, Outcome, Reason
from policies.errors import PolicyError
from policies.explain import explain_under
from policies.grant_holds import EndedHold, GrantHolds
from policies.message import Message
from policies.moments import clock_behind, could_apply
from policies.paths import Node, Release
from policies.releases import Held, Walk, besides, release_fields, release_topic, release_whole
from policies.routes import DeviceRef, Route, RouteTable
from policies.sparkplug import PREFIX as SPARKPLUG_PREFIX
from policies.sparkplug import SparkplugState, parse_topic
from policies.verdicts import internal, released, withheld
from policies.windows import Window, Windows, sample, summary

__all__ = ["MAX_PAYLOAD_BYTES", "Engine", "PseudonymKeys"]


MAX_PAYLOAD_BYTES = 256 * 1024

_UNKNOWN = Reason("unknown_device")
_ELSEWHERE = Reason("claimed_elsewhere")  # another instance's customer's (contested.py)
_NO_GRANT = Reason("no_grant")
_NOT_LOADED = Reason("policy_not_loaded")
_NOT_JSON = Reason("not_json")
_INVALID_UTF8 = Reason("invalid_utf8")
_TOO_LARGE = Reason("too_large")
_ERASED = Reason("erased")
_NONE: Mapping[str, int] = {}


class PseudonymKeys(Protocol):
    def key(self, customer: str, recipient: str) -> bytes | None:
        """The HMAC key for this customer and recipient; None once it has been erased."""


class Engine:
    """Evaluates messages against the compiled policies of every customer on this box."""

    def __init__(
        self,
        policies: Sequence[CompiledPolicy],
        keys: PseudonymKeys,
        *,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self._keys = keys
        self._max_payload = max_payload_bytes
        # Counts changes of what the running policies release (``replace``, ``remove``, holds):
        # what derives from them (queues' shares, forwarders' checked rows) is derived again.
        self.generation = 0
        self._policies: dict[str, CompiledPolicy] = {}
        for policy in policies:
            if policy.customer in self._policies:
                raise PolicyError(
                    policy.source,
                    f"customer {policy.customer!r} already has a policy "
                    f"({self._policies[policy.customer].source})",
                )
            self._policies[policy.customer] = policy
        # Consent withdrawn, objections, restrictions: since when, and which ended
        # (``policies.grant_holds``; ``policies.onset`` reads the ended ones).
        self._holds = GrantHolds()
        self._last_release: dict[tuple[str, str, str], float] = {}
        self._windows = Windows()
        self._sparkplug = SparkplugState()
        self._routes = RouteTable(list(self._policies.values()))
        # In a cluster, topics another instance's customer ranks first for: they resolve to no
        # device here, so they are withheld (Reason claimed_elsewhere) and never decided under
        # this instance's policies (gateway/messages/contested.py). None: every topic is ours.
        self.disowned: Callable[[str], bool] | None = None

    # -- topics -------------------------------------------------------------------------------

    def _lookup(self, topic: str) -> tuple[Route, Mapping[str, str]] | Reason:
        if self.disowned is not None and self.disowned(topic):
            return _ELSEWHERE  # also where only a file of ours that does not run claims it
        hit = self._routes.lookup(topic)
        return _UNKNOWN if hit is None else hit

    def device_for(self, topic: str) -> DeviceRef | None:
        hit = self._lookup(topic)
        if isinstance(hit, Reason):
            return None
        route, captures = hit
        d = route.device
        return DeviceRef(
            route.policy.customer, d.id, d.name, d.kind, route.stream, dict(captures), d.profile
        )

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self,
        message: Message,
        now: datetime,
        *,
        hours_at: datetime | None = None,
        also: Sequence[datetime | None] = (),
    ) -> list[Decision]:
        """One decision per recipient; never raises (a failure withholds, Reason internal_error).
        ``hours_at``: the moment allowed hours are judged at, if not ``now`` (a held release:
        gateway/messages/sendtime_rules.py). ``also``: the other moments grants are judged at
        while the system clock is behind ``now``, the log's time (``policies.moments``)."""
        try:
            hit = self._lookup(message.topic)
        except Exception as exc:
            return [internal(None, None, None, exc, message.topic)]
        if isinstance(hit, Reason):
            return [Decision(None, None, None, Outcome.WITHHELD, reason=hit, withheld=WHOLE)]
        route, captures = hit
        policy, device = route.policy, route.device
        parsed = Parsed(message.payload if isinstance(message.payload, bytes) else b"")
        try:
            if message.topic.startswith(SPARKPLUG_PREFIX):
                sparkplug = parse_topic(message.topic)
                if sparkplug is not None and len(parsed.raw) <= self._max_payload:
                    decoded = self._sparkplug.decode(policy.customer, sparkplug, parsed.raw)
                    if isinstance(decoded, Reason):
                        if route.recipients:
                            return [
                                self._withheld(route, recipient, None, decoded, parsed)
                                for recipient, _ in route.recipients
                            ]
                    else:
                        parsed = Parsed.decoded(decoded)
            if not route.recipients:
                if len(parsed.raw) <= self._max_payload:
                    parsed.parse()
                listed = parsed.leaves()
                return [
                    Decision(
                        policy.customer,
                        device.id,
                        None,
                        Outcome.WITHHELD,
                        policy_version=policy.version,
                        reason=_NO_GRANT,
                        withheld=tuple(listed.items),
                        stream=route.stream,
                        omitted={"withheld": listed.more} if listed.more else _NONE,
                    )
                ]
        except Exception as exc:
            return [internal(route, None, None, exc, message.topic)]
        out: list[Decision] = []
        for recipient, grants in route.recipients:
            if not grants:
                out.append(self._withheld(route, recipient, None, _NO_GRANT, parsed))
                continue
            if also:  # the system clock is behind: see policies.moments
                held = functools.partial(self._holds.reason, route.policy.customer)
                free = could_apply(grants, held, parsed, self._max_payload)
                behind = clock_behind(free, now, also, hours_at)
                if behind is not None:
                    out.append(self._withheld(route, recipient, behind[0], behind[1], parsed))
                    continue
            out.extend(
                self._for_recipient(
                    route, grants, message, parsed, captures, now=now, hours_at=hours_at or now
                )
            )
        return out

    def _for_recipient(
        self,
        route: Route,
        grants: tuple[CompiledGrant, ...],
        message: Message,
        parsed: Parsed,
        captures: Mapping[str, str],
        *,
        now: datetime,
        hours_at: datetime,
    ) -> list[Decision]:
        """The releases for one recipient (each grant's own, by grant id), or one decision
        saying why nothing leaves. Which grants apply is decided first; then each field grant
        releases what it names, each leaf in the most protective treatment any applying grant
        for this recipient gives it (``policies.combine``). Nothing depends on grant order."""
        recipient = grants[0].recipient
        releases: list[Decision] = []
        held: list[Decision] = []
        walks: list[Walk] = []
        summarised: list[Node] = []  # the fields applying aggregate grants summarise
        for grant in grants:  # by id (``policies.routes``)
            try:
                got = self._admit(
                    route, grant, message, parsed, captures, now=now, hours_at=hours_at
                )
            except Exception as exc:
                held.append(internal(route, recipient, grant, exc, message.topic))
                continue
            if isinstance(got, Walk):
                walks.append(got)
            elif got.outcome is not Outcome.WITHHELD:
                releases.append(got)
            else:
                held.append(got)
                if got.reason is grant.aggregating_reason and grant.shadow is not None:
                    summarised.append(grant.shadow)
        # One key per customer and recipient: any applying grant that pseudonymises fetched it.
        key = None
        for w in walks:
            if w.key is not None:
                key = w.key
                break
        for walk in walks:
            # One applying grant alone (the common case) has no other grant's rules to honour.
            shadows = (
                [w.grant.shadow for w in walks if w is not walk and w.grant.shadow is not None]
                if len(walks) > 1
                else []
            )
            grant = walk.grant
            try:
                if grant.whole is not None:
                    built = release_whole(route, walk, parsed)
                else:
                    shadows += summarised
                    built = release_fields(route, walk, parsed, key=key, shadows=shadows)
            except Exception as exc:
                held.append(internal(route, recipient, grant, exc, message.topic))
                continue
            if isinstance(built, Held):
                reason, rel = built.reason, built.rel
                held.append(self._withheld(route, recipient, grant, reason, parsed, rel=rel))
            else:
                if grant.rate_limit is not None:
                    self._rate_limited(route, grant, message.spacing(now), record=True)
                releases.append(built)
        if len(releases) > 1:
            return besides(sorted(releases, key=lambda d: d.grant or ""))
        if releases:
            return releases
        # Nothing leaves: a sample being summarised says so first, else the first grant by id.
        summarising = [d for d in held if d.reason is not None and d.reason.code == "aggregating"]
        return [(summarising or sorted(held, key=lambda d: d.grant or ""))[0]]

    def _withheld(
        self,
        route: Route,
        recipient: str | None,
        grant: CompiledGrant | None,
        reason: Reason,
        parsed: Parsed,
        *,
        rel: Release | None = None,
    ) -> Decision:
        """Nothing leaves for ``recipient``; with ``rel``, the field problems its walk met."""
        if parsed.state == UNPARSED and len(parsed.raw) <= self._max_payload:
            parsed.parse()
        return withheld(route, recipient, grant, reason, parsed.leaves(), rel=rel)

    def _blocked(
        self, customer: str, grant: CompiledGrant, now: datetime
    ) -> tuple[Reason | None, bytes | None]:
        reason = self._holds.reason(customer, grant.id)
        if reason is not None:
            return reason, None
        reason = grant.validity_reason(now)
        if reason is not None:
            return reason, None
        if grant.needs_key:
            key = self._keys.key(customer, grant.recipient)
            if key is None:
                return _ERASED, None
            return None, key
        return None, None

    def _rate_limited(self, route: Route, grant: CompiledGrant, at: float, *, record: bool) -> bool:
        """True when the interval since the device's last release under ``grant`` has not
        passed (per device, as the policy says: not per topic, whose captured levels a device
        chooses); with ``record`` a release now is remembered (only once it is certain something
        leaves). ``at``: seconds on the clock no one sets when given one (``Message.spacing``)."""
        if grant.rate_limit is None:
            return False
        slot = (route.policy.customer, grant.id, route.device.id)
        last = self._last_release.get(slot)
        if last is not None and at - last < grant.rate_limit:
            return True
        if record:
            self._last_release[slot] = at
        return False

    def _admit(
        self,
        route: Route,
        grant: CompiledGrant,
        message: Message,
        parsed: Parsed,
        captures: Mapping[str, str],
        *,
        now: datetime,
        hours_at: datetime,
    ) -> Decision | Walk:
        """Whether ``grant`` applies to the message now: a decision (withheld and why, an opaque
        or whole-body release, a sample taken), or the field walk still to do."""
        customer = route.policy.customer
        reason, key = self._blocked(customer, grant, now)
        if reason is not None:
            return self._withheld(route, grant.recipient, grant, reason, parsed)
        if grant.hours is not None and not grant.in_hours(hours_at):
            return self._withheld(route, grant.recipient, grant, grant.hours_reason, parsed)
        if len(parsed.raw) > self._max_payload:
            return self._withheld(route, grant.recipient, grant, _TOO_LARGE, parsed)
        topic, t_shared, t_altered = release_topic(route, grant, message.topic, captures, key)
        if grant.opaque:
            if self._rate_limited(route, grant, message.spacing(now), record=True):
                return self._withheld(route, grant.recipient, grant, grant.rate_reason, parsed)
            return released(
                route,
                grant,
                topic,
                body=parsed.raw,
                shared=["$payload", *t_shared],
                altered=t_altered,
                withheld=(),
                opaque=True,
            )
        state = parsed.parse()
        if state == BAD_UTF8:
            return self._withheld(route, grant.recipient, grant, _INVALID_UTF8, parsed)
        if grant.whole is None and state != JSON:
            return self._withheld(route, grant.recipient, grant, _NOT_JSON, parsed)
        if grant.conditions:
            for condition, unmet in zip(grant.conditions, grant.condition_reasons, strict=True):
                if not condition.holds(parsed.root):
                    return self._withheld(route, grant.recipient, grant, unmet, parsed)
        if grant.aggregate is not None:
            return self._accumulate(route, grant, topic, parsed, now)
        if grant.rate_limit is not None and self._rate_limited(
            route, grant, message.spacing(now), record=False
        ):  # skip the walk early
            return self._withheld(route, grant.recipient, grant, grant.rate_reason, parsed)
        return Walk(grant, key, topic, t_shared, t_altered)

    # -- aggregation --------------------------------------------------------------------------

    def _accumulate(
        self, route: Route, grant: CompiledGrant, topic: str, parsed: Parsed, now: datetime
    ) -> Decision:
        spec = grant.aggregate
        assert spec is not None
        values = sample(spec, parsed.root)
        if not values:
            return self._withheld(route, grant.recipient, grant, grant.nothing_reason, parsed)
        self._windows.add(route, grant, topic, values, now)
        return self._withheld(route, grant.recipient, grant, grant.aggregating_reason, parsed)

    def flush(self, now: datetime, also: Sequence[datetime | None] = ()) -> list[Decision]:
        """Decisions for the windows that closed by ``now``, oldest first (``also``: evaluate)."""
        return [self._window_decision(window, now, also) for window in self._windows.due(now)]

    def _window_decision(
        self, window: Window, now: datetime, also: Sequence[datetime | None]
    ) -> Decision:
        policy = self._policies.get(window.policy.customer)
        if policy is None:
            # Its policy stopped running (its file was removed): nothing of it is released.
            return summary(window, _NOT_LOADED)
        reason, _ = self._blocked(policy.customer, window.grant, now)
        behind = clock_behind([window.grant], now, also) if reason is None else None
        reason = reason if behind is None else behind[1]  # a summary: its own grant alone
        return summary(window, reason)

    # -- consent and lifecycle ----------------------------------------------------------------

    def _grant(self, customer: str, grant_id: str) -> CompiledGrant:
        policy = self._policies.get(customer)
        if policy is None:
            raise PolicyError("<engine>", f"no policy for customer {customer!r}")
        grant = policy.grant(grant_id)
        if grant is None:
            known = ", ".join(g.id for g in policy.grants) or "none"
            raise PolicyError(
                policy.source, f"no grant {grant_id!r} for customer {customer!r} (grants: {known})"
            )
        return grant

    def still_allowed(self, customer: str, grant: str, now: datetime) -> Reason | None:
        """None when a row released under ``grant`` may still be published now; else why not."""
        try:
            compiled = self._grant(customer, grant)
        except PolicyError:
            return _NO_GRANT
        return self.holds_back(customer, compiled, now)

    def holds_back(self, customer: str, grant: CompiledGrant, now: datetime) -> Reason | None:
        """``still_allowed`` for a grant already looked up in ``customer``'s running policy."""
        reason, _ = self._blocked(customer, grant, now)
        return reason

    def withdraw(
        self, customer: str, grant: str, at: datetime, because: Reason | None = None
    ) -> None:
        """From now on ``grant`` releases nothing (also for rows still queued, see still_allowed);
        ``because`` names an objection or a restriction (default: consent withdrawn)."""
        self._grant(customer, grant)
        self._holds.hold(customer, grant, at, because)
        self.generation += 1

    def give(self, customer: str, grant: str, at: datetime, because: Reason | None = None) -> None:
        """Consent (re)given, or an objection or restriction lifted: ``grant`` releases again as
        its policy says. A restarted gateway hands the last such event back with ``because``
        (the hold it ended), so ``released_since`` survives the restart."""
        self._grant(customer, grant)
        self._holds.end(customer, grant, at, because)
        self.generation += 1

    def released_since(self, customer: str, grant: str, since: datetime) -> Reason | None:
        """The hold on ``grant`` that ended after ``since``, or None (``GrantHolds``)."""
        return self._holds.released_since(customer, grant, since)

    def held(self, customer: str, grant: str) -> tuple[datetime, Reason] | None:
        """Since when and why ``grant`` is held back now (withdrawn, objected, restricted)."""
        return self._holds.held(customer, grant)

    def ended_holds(self, customer: str, grant: str) -> Sequence[EndedHold]:
        """The holds on ``grant`` that ended, oldest first (``GrantHolds.ended``)."""
        return self._holds.ended(customer, grant)

    def withdrawn(self) -> Mapping[tuple[str, str], datetime]:
        """(customer, grant) -> when it was withdrawn."""
        return self._holds.since()

    def replace(self, policy: CompiledPolicy) -> None:
        """Hot reload of one customer's policy. Withdrawals stay; open aggregation windows of
        the old policy close now and are emitted by the next ``flush`` under the old version."""
        policies = dict(self._policies)
        policies[policy.customer] = policy
        self._routes = RouteTable(list(policies.values()))  # raises before any change on overlap
        self._policies = policies
        self.generation += 1
        self._windows.close(policy.customer)

    def remove(self, customer: str) -> None:
        """Stop running ``customer``'s policy (its log moves to another instance): its topics no
        longer resolve, and its consents can no longer be acted on here. Its open aggregation
        windows must have been closed and flushed before (``replace``, then ``flush``).
        Withdrawals stay, as at ``replace``: if the policy runs here again, they still hold."""
        policies = {c: p for c, p in self._policies.items() if c != customer}
        self._routes = RouteTable(list(policies.values()))
        self._policies = policies
        self.generation += 1

    def policies(self) -> Sequence[CompiledPolicy]:
        return tuple(self._policies.values())

    def policy(self, customer: str) -> CompiledPolicy | None:
        return self._policies.get(customer)

    # -- explanation --------------------------------------------------------------------------

    def explain(self, decision: Decision, lang: str) -> str:
        """The decision in plain words, German (``de``) or English (``en``)."""
        return explain_under(self._policies.get(decision.customer or ""), decision, lang)
