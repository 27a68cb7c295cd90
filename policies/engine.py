"""The engine: one message in, one decision per recipient out, default deny at every step.

For a message the engine finds the device by topic (precompiled patterns, exact topics in a
dict), parses the body once (``orjson``), and for each recipient named in the customer's grants
tries the grants that cover the device and stream, in file order; the first that releases
something decides, otherwise the first one's reason is given (a sample taken by an aggregate
grant is preferred: "being summarised"). Aggregate grants always take their sample, whatever
grant comes before them, so the order of an aggregate grant and a field grant never matters. A grant is checked in this order:

    withdrawn -> validity window and consent record -> pseudonym key erased -> hours
    -> body too large -> opaque release | not UTF-8 -> not JSON -> conditions
    -> aggregate (withheld now, released by ``flush``) | field walk -> rate limit -> release

State kept between messages is small and explicit: withdrawn grants, the time each
(grant, device, topic) last released (rate limits), open aggregation windows, and Sparkplug B
BIRTH state (``policies/sparkplug.py``: a ``spBv1.0/…`` message is decoded against its BIRTH
into ``{metric name: value}`` before the grants see it; DATA before BIRTH is ``no_birth``). ``evaluate``
never raises: any failure is a WITHHELD decision with Reason ``internal_error`` (and the
traceback in the log).

Numbers leave exactly as they arrived. ``orjson`` parses fast but reads ``23.20`` as ``23.2``,
integers beyond 64 bits as floats (``123456789012345678901234567890`` became
``1.2345678901234568e+29`` under ``keep``) and refuses ``1e999``; so the fields a grant releases
are taken from a second, literal-keeping parse (``policies.numbers``) and written back as the
device wrote them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from policies.compiler import CompiledDevice, CompiledGrant, CompiledPolicy, CompiledTopic
from policies.decision import Alteration, Decision, Outcome, Reason
from policies.errors import PolicyError
from policies.explain import explain as render_explanation
from policies.message import Message
from policies.numbers import (
    NumberOutOfRange,
    dumps_exact,
    is_number_error,
    loads_exact,
    round_trips,
)
from policies.paths import NOTHING, Listed, Release, collect, release_root
from policies.sparkplug import PREFIX as SPARKPLUG_PREFIX
from policies.sparkplug import SparkplugState, parse_topic
from policies.topics import TopicPattern, patterns_overlap
from policies.treatments import Accumulator, TreatmentFailed, pseudonymise, to_number

__all__ = ["MAX_PAYLOAD_BYTES", "DeviceRef", "Engine", "PseudonymKeys"]

MAX_PAYLOAD_BYTES = 256 * 1024

_UNKNOWN = Reason("unknown_device")
_NO_GRANT = Reason("no_grant")
_NOT_JSON = Reason("not_json")
_INVALID_UTF8 = Reason("invalid_utf8")
_TOO_LARGE = Reason("too_large")
_WITHDRAWN = Reason("withdrawn")
_ERASED = Reason("erased")
_WHOLE = ("$payload",)
_EMPTY: Mapping[str, str] = {}
_NO_REASONS: Mapping[str, Reason] = {}
_NONE: Mapping[str, int] = {}

log = logging.getLogger(__name__)

_UNPARSED, _JSON, _TEXT, _BAD_UTF8 = 0, 1, 2, 3


class PseudonymKeys(Protocol):
    def key(self, customer: str, recipient: str) -> bytes | None:
        """The HMAC key for this customer and recipient; None once it has been erased."""


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """Who a topic belongs to: customer, device, its human name and kind, and the stream."""

    customer: str
    device: str
    name: str
    kind: str
    stream: str
    captures: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None


class _Route:
    """Precomputed per (customer, device, stream): which grants to try for which recipient."""

    __slots__ = ("device", "policy", "recipients", "stream", "topics")

    def __init__(self, policy: CompiledPolicy, device: CompiledDevice, stream: str) -> None:
        self.policy = policy
        self.device = device
        self.stream = stream
        self.topics: dict[str, str] = {}  # grant id -> upstream topic, for static templates
        order = list(dict.fromkeys(g.recipient for g in policy.grants))
        table = [
            (r, tuple(g for g in policy.grants if g.recipient == r and g.covers(device.id, stream)))
            for r in order
        ]
        # No grant for any recipient: one decision with recipient None says so.
        self.recipients = tuple(table) if any(grants for _, grants in table) else ()


class _Parsed:
    """The message body, parsed at most once and shared by every recipient's grants."""

    __slots__ = ("_exact", "_leaves", "raw", "root", "state")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.state = _UNPARSED
        self.root: Any = None
        self._exact: Any = None
        self._leaves: Listed | None = None

    def parse(self) -> int:
        if self.state == _UNPARSED:
            try:
                self.root = orjson.loads(self.raw)
                self.state = _JSON
            except orjson.JSONDecodeError as exc:
                try:
                    text = self.raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.state = _BAD_UTF8
                    return self.state
                self.root, self.state = text, _TEXT
                if is_number_error(exc):  # valid JSON orjson cannot hold (1e999): keep literals
                    with contextlib.suppress(ValueError, RecursionError):
                        self._exact = self.root = loads_exact(text)
                        self.state = _JSON
        return self.state

    def exact(self) -> Any:
        """The body with every number as its literal (only once something is released); the
        fast parse itself when every number in it writes back unchanged (the common case)."""
        if self._exact is None:
            if round_trips(self.raw):
                self._exact = self.root
            else:
                self._exact = loads_exact(self.raw.decode("utf-8"))
        return self._exact

    def leaves(self) -> Listed:
        """Every leaf path of the body, listed up to the caps of ``policies.paths``."""
        if self._leaves is None:
            self._leaves = Listed()
            if self.state == _JSON:
                collect(self.root, "", self._leaves)
            else:
                self._leaves.add(_WHOLE[0], len(_WHOLE[0]))
        return self._leaves


class _Window:
    __slots__ = ("acc", "device", "end", "grant", "index", "policy", "start", "stream", "topic")

    def __init__(
        self,
        policy: CompiledPolicy,
        grant: CompiledGrant,
        device: CompiledDevice,
        stream: str,
        topic: str,
        *,
        index: int,
        size: float,
    ) -> None:
        self.policy = policy
        self.grant = grant
        self.device = device
        self.stream = stream
        self.topic = topic
        self.index = index
        self.start = datetime.fromtimestamp(index * size, tz=UTC)
        self.end = datetime.fromtimestamp((index + 1) * size, tz=UTC)
        self.acc: dict[str, Accumulator] = {}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
        self._policies: dict[str, CompiledPolicy] = {}
        for policy in policies:
            if policy.customer in self._policies:
                raise PolicyError(
                    policy.source,
                    f"customer {policy.customer!r} already has a policy "
                    f"({self._policies[policy.customer].source})",
                )
            self._policies[policy.customer] = policy
        self._withdrawn: dict[tuple[str, str], datetime] = {}
        # Why a grant in ``_withdrawn`` releases nothing when it is not a consent withdrawn: an
        # objection (GDPR Art. 21) or a restriction (Art. 18), each explained in its own words.
        self._held_because: dict[tuple[str, str], Reason] = {}
        self._last_release: dict[tuple[str, str, str, str], datetime] = {}
        self._windows: dict[tuple[str, str, str, str], _Window] = {}
        self._closed: list[_Window] = []
        self._sparkplug = SparkplugState()
        self._index(list(self._policies.values()))

    # -- topics -------------------------------------------------------------------------------

    def _index(self, policies: list[CompiledPolicy]) -> None:
        _check_overlaps(policies)
        exact: dict[str, _Route] = {}
        buckets: dict[str, list[tuple[TopicPattern, _Route]]] = {}
        wild: list[tuple[TopicPattern, _Route]] = []
        for policy in policies:
            for device in policy.devices:
                routes = {s: _Route(policy, device, s) for s in device.streams}
                for topic in device.topics:
                    route = routes[topic.stream]
                    pattern = topic.pattern
                    if pattern.literal:
                        exact[pattern.pattern] = route
                    elif pattern.first_level is not None:
                        buckets.setdefault(pattern.first_level, []).append((pattern, route))
                    else:
                        wild.append((pattern, route))
        self._exact, self._buckets, self._wild = exact, buckets, wild

    def _lookup(self, topic: str) -> tuple[_Route, Mapping[str, str]] | None:
        route = self._exact.get(topic)
        if route is not None:
            return route, _EMPTY
        for pattern, candidate in self._buckets.get(topic.partition("/")[0], ()):
            captures = pattern.match(topic)
            if captures is not None:
                return candidate, captures
        for pattern, candidate in self._wild:
            captures = pattern.match(topic)
            if captures is not None:
                return candidate, captures
        return None

    def device_for(self, topic: str) -> DeviceRef | None:
        hit = self._lookup(topic)
        if hit is None:
            return None
        route, captures = hit
        device = route.device
        return DeviceRef(
            route.policy.customer,
            device.id,
            device.name,
            device.kind,
            route.stream,
            dict(captures),
            device.profile,
        )

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, message: Message, now: datetime) -> list[Decision]:
        """One decision per recipient; never raises (a failure withholds, Reason internal_error)."""
        try:
            hit = self._lookup(message.topic)
        except Exception as exc:
            return [_internal(None, None, None, exc, message.topic)]
        if hit is None:
            return [Decision(None, None, None, Outcome.WITHHELD, reason=_UNKNOWN, withheld=_WHOLE)]
        route, captures = hit
        policy, device = route.policy, route.device
        parsed = _Parsed(message.payload if isinstance(message.payload, bytes) else b"")
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
                        parsed = _Parsed(orjson.dumps(decoded))
                        parsed.root, parsed.state = decoded, _JSON
                        parsed._exact = decoded
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
            return [_internal(route, None, None, exc, message.topic)]
        out: list[Decision] = []
        for recipient, grants in route.recipients:
            if not grants:
                out.append(self._withheld(route, recipient, None, _NO_GRANT, parsed))
                continue
            # Grant order never changes the outcome for aggregates: every aggregate grant takes
            # its sample whether or not another grant releases the message now (its summary
            # leaves from ``flush``). Of the other grants the first that releases decides.
            first: Decision | None = None
            released: Decision | None = None
            for grant in grants:
                if released is not None and grant.aggregate is None:
                    continue
                try:
                    decision = self._apply(route, grant, message, parsed, captures, now=now)
                except Exception as exc:
                    decision = _internal(route, recipient, grant, exc, message.topic)
                if decision.outcome is not Outcome.WITHHELD and released is None:
                    released = decision
                if first is None or (
                    first.reason is not None
                    and first.reason.code != "aggregating"
                    and decision.reason is not None
                    and decision.reason.code == "aggregating"
                ):
                    first = decision
            chosen = released or first
            assert chosen is not None
            out.append(chosen)
        return out

    def _withheld(
        self,
        route: _Route,
        recipient: str | None,
        grant: CompiledGrant | None,
        reason: Reason,
        parsed: _Parsed,
        *,
        rel: Release | None = None,
    ) -> Decision:
        """Nothing leaves for ``recipient``; with ``rel``, the field problems its walk met."""
        if parsed.state == _UNPARSED and len(parsed.raw) <= self._max_payload:
            parsed.parse()
        listed = parsed.leaves()
        omitted = {"withheld": listed.more, "field_reasons": rel.problems_more if rel else 0}
        return Decision(
            route.policy.customer,
            route.device.id,
            recipient,
            Outcome.WITHHELD,
            grant=grant.id if grant else None,
            policy_version=route.policy.version,
            purpose=grant.purpose if grant else _EMPTY,
            legal_basis=grant.legal_basis if grant else None,
            withheld=tuple(listed.items),
            reason=reason,
            stream=route.stream,
            field_reasons=rel.problems if rel else _NO_REASONS,
            omitted={name: n for name, n in omitted.items() if n} or _NONE,
        )

    def _blocked(
        self, customer: str, grant: CompiledGrant, now: datetime
    ) -> tuple[Reason | None, bytes | None]:
        if (customer, grant.id) in self._withdrawn:
            return self._held_because.get((customer, grant.id), _WITHDRAWN), None
        reason = grant.validity_reason(now)
        if reason is not None:
            return reason, None
        if grant.needs_key:
            key = self._keys.key(customer, grant.recipient)
            if key is None:
                return _ERASED, None
            return None, key
        return None, None

    def _topic(
        self,
        route: _Route,
        grant: CompiledGrant,
        topic: str,
        captures: Mapping[str, str],
        key: bytes | None,
    ) -> tuple[str, list[str], list[Alteration]]:
        template = grant.template
        if grant.static_topic:
            static = route.topics.get(grant.id)
            if static is None:
                static = route.topics[grant.id] = template.render(
                    {
                        "customer": route.policy.customer,
                        "device": route.device.id,
                        "stream": route.stream,
                    }
                )
            return static, [], []
        values = {
            "customer": route.policy.customer,
            "device": route.device.id,
            "stream": route.stream,
            "topic": topic,
        }
        shared: list[str] = ["$topic"] if "topic" in template.names else []
        altered: list[Alteration] = []
        for name in template.captures:
            if grant.topic_levels[name] == "pseudonymise":
                assert key is not None
                values[name] = pseudonymise(captures[name], key)
                altered.append(grant.topic_alterations[name])
            else:
                values[name] = captures[name]
                shared.append(f"$topic.{name}")
        return template.render(values), shared, altered

    def _rate_limited(
        self, route: _Route, grant: CompiledGrant, topic: str, now: datetime, *, record: bool
    ) -> bool:
        """True when the interval since the last release has not passed; with ``record`` a
        release now is remembered (only once it is certain something leaves)."""
        if grant.rate_limit is None:
            return False
        slot = (route.policy.customer, grant.id, route.device.id, topic)
        last = self._last_release.get(slot)
        if last is not None and (now - last).total_seconds() < grant.rate_limit:
            return True
        if record:
            self._last_release[slot] = now
        return False

    def _apply(
        self,
        route: _Route,
        grant: CompiledGrant,
        message: Message,
        parsed: _Parsed,
        captures: Mapping[str, str],
        *,
        now: datetime,
    ) -> Decision:
        customer = route.policy.customer
        reason, key = self._blocked(customer, grant, now)
        if reason is not None:
            return self._withheld(route, grant.recipient, grant, reason, parsed)
        if grant.hours is not None and not grant.in_hours(now):
            return self._withheld(route, grant.recipient, grant, grant.hours_reason, parsed)
        if len(parsed.raw) > self._max_payload:
            return self._withheld(route, grant.recipient, grant, _TOO_LARGE, parsed)
        topic, t_shared, t_altered = self._topic(route, grant, message.topic, captures, key)
        if grant.opaque:
            if self._rate_limited(route, grant, topic, now, record=True):
                return self._withheld(route, grant.recipient, grant, grant.rate_reason, parsed)
            return self._released(
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
        if state == _BAD_UTF8:
            return self._withheld(route, grant.recipient, grant, _INVALID_UTF8, parsed)
        if grant.whole is None and state != _JSON:
            return self._withheld(route, grant.recipient, grant, _NOT_JSON, parsed)
        for condition, unmet in zip(grant.conditions, grant.condition_reasons, strict=True):
            if not condition.holds(parsed.root):
                return self._withheld(route, grant.recipient, grant, unmet, parsed)
        if grant.aggregate is not None:
            return self._accumulate(route, grant, topic, parsed, now)
        if self._rate_limited(route, grant, topic, now, record=False):  # skip the walk early
            return self._withheld(route, grant.recipient, grant, grant.rate_reason, parsed)
        rel = Release(key)
        if grant.whole is not None:
            got = grant.whole.apply(parsed.root, "$payload", None, rel)
            if got is NOTHING:
                problem = rel.problems.get("$payload", Reason("nothing_released"))
                return self._withheld(route, grant.recipient, grant, problem, parsed, rel=rel)
            if grant.whole.fn is None:
                body = parsed.raw  # keep: the exact bytes, literals like 23.20 untouched
            elif state == _TEXT and isinstance(got, str):
                body = got.encode("utf-8", errors="surrogatepass")
            else:
                body = orjson.dumps(got)
        else:
            # The literal-keeping tree: a kept 23.20 or 2**70 leaves as the device wrote it.
            out = release_root(parsed.exact(), grant.trie, rel)
            if not out:
                if rel.problems:
                    problem = next(iter(rel.problems.values()))
                else:
                    problem = grant.nothing_reason
                return self._withheld(route, grant.recipient, grant, problem, parsed, rel=rel)
            try:
                body = dumps_exact(out)
            except NumberOutOfRange:  # inside a kept object; a kept number says its field
                reason = Reason("out_of_range", {"field": "$payload"})
                return self._withheld(route, grant.recipient, grant, reason, parsed)
        self._rate_limited(route, grant, topic, now, record=True)
        return self._released(
            route,
            grant,
            topic,
            body=body,
            shared=[*rel.shared.items, *t_shared],
            altered=[*rel.altered.items, *t_altered],
            withheld=tuple(rel.withheld.items),
            opaque=False,
            field_reasons=rel.problems,
            omitted=rel.omitted(),
        )

    def _released(
        self,
        route: _Route,
        grant: CompiledGrant,
        topic: str,
        *,
        body: bytes,
        shared: list[str],
        altered: list[Alteration],
        withheld: tuple[str, ...],
        opaque: bool,
        field_reasons: Mapping[str, Reason] = _NO_REASONS,
        omitted: Mapping[str, int] = _NONE,
    ) -> Decision:
        return Decision(
            route.policy.customer,
            route.device.id,
            grant.recipient,
            Outcome.ALTERED if altered else Outcome.SHARED,
            grant=grant.id,
            policy_version=route.policy.version,
            purpose=grant.purpose,
            legal_basis=grant.legal_basis,
            topic=topic,
            payload=body,
            shared=tuple(shared),
            altered=tuple(altered),
            withheld=withheld,
            opaque=opaque,
            stream=route.stream,
            field_reasons=field_reasons,
            omitted=omitted,
        )

    # -- aggregation --------------------------------------------------------------------------

    def _accumulate(
        self, route: _Route, grant: CompiledGrant, topic: str, parsed: _Parsed, now: datetime
    ) -> Decision:
        spec = grant.aggregate
        assert spec is not None
        values: dict[str, float] = {}
        for path in spec.fields:
            value: Any = parsed.root
            for part in path.split("."):
                value = value.get(part) if type(value) is dict else None
            if type(value) is bool:  # a flag: the mean is the share of true, the sum its count
                values[path] = 1.0 if value else 0.0
                continue
            try:
                values[path] = float(to_number(value))
            except TreatmentFailed:
                continue
        if not values:
            return self._withheld(route, grant.recipient, grant, grant.nothing_reason, parsed)
        slot = (route.policy.customer, grant.id, route.device.id, topic)
        index = int(now.timestamp() // spec.window)
        window = self._windows.get(slot)
        if window is not None and window.index != index:
            self._closed.append(window)
            window = None
        if window is None:
            window = _Window(
                route.policy,
                grant,
                route.device,
                route.stream,
                topic,
                index=index,
                size=spec.window,
            )
            self._windows[slot] = window
        for path, number in values.items():
            window.acc.setdefault(path, Accumulator()).add(number)
        return self._withheld(route, grant.recipient, grant, grant.aggregating_reason, parsed)

    def flush(self, now: datetime) -> list[Decision]:
        """Decisions for the aggregation windows that closed by ``now``, oldest first."""
        due, self._closed = self._closed, []
        for slot, window in list(self._windows.items()):
            if window.end <= now:
                due.append(window)
                del self._windows[slot]
        due.sort(key=lambda w: w.start)
        return [self._window_decision(window, now) for window in due]

    def _window_decision(self, window: _Window, now: datetime) -> Decision:
        grant, policy = window.grant, window.policy
        spec = grant.aggregate
        assert spec is not None
        base = Decision(
            policy.customer,
            window.device.id,
            grant.recipient,
            Outcome.WITHHELD,
            grant=grant.id,
            policy_version=policy.version,
            purpose=grant.purpose,
            legal_basis=grant.legal_basis,
            stream=window.stream,
        )
        reason, _ = self._blocked(policy.customer, grant, now)
        if reason is not None:
            return _replace(base, reason=reason, withheld=tuple(window.acc))
        body: dict[str, Any] = {"window": {"start": _iso(window.start), "end": _iso(window.end)}}
        altered = []
        problems: dict[str, Reason] = {}
        for path, functions in spec.fields.items():
            acc = window.acc.get(path)
            if acc is None:
                continue
            if acc.count < spec.min_count:
                # A summary of too few samples is the samples themselves: one sample's mean is
                # its raw value. Withheld for this window, and the customer is told why.
                problems[path] = Reason(
                    "too_few_samples",
                    {"field": path, "count": str(acc.count), "min": str(spec.min_count)},
                )
                continue
            results = {fn: acc.result(fn) for fn in functions}
            if not all(math.isfinite(v) for v in results.values()):
                # A sum past a double's range: orjson would write it as null, silently.
                problems[path] = Reason("out_of_range", {"field": path})
                continue
            body[path] = results
            detail = f"{', '.join(functions)}; {spec.window:g} s; {acc.count}"
            altered.append(Alteration(path, "aggregate", detail))
        if not altered:
            reason = next(iter(problems.values()), grant.nothing_reason)
            return _replace(base, reason=reason, withheld=tuple(window.acc))
        return _replace(
            base,
            outcome=Outcome.ALTERED,
            topic=window.topic,
            payload=orjson.dumps(body),
            altered=tuple(altered),
            withheld=tuple(problems),
            field_reasons=problems,
        )

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
        reason, _ = self._blocked(customer, compiled, now)
        return reason

    def withdraw(
        self, customer: str, grant: str, at: datetime, because: Reason | None = None
    ) -> None:
        """From now on ``grant`` releases nothing (also for rows still queued, see still_allowed);
        ``because`` names an objection or a restriction (default: consent withdrawn)."""
        self._grant(customer, grant)
        self._withdrawn[(customer, grant)] = at
        if because is None:
            self._held_because.pop((customer, grant), None)
        else:
            self._held_because[(customer, grant)] = because

    def give(self, customer: str, grant: str, at: datetime) -> None:
        """Consent (re)given: ``grant`` releases again as its policy says."""
        self._grant(customer, grant)
        withdrawn_at = self._withdrawn.get((customer, grant))
        if withdrawn_at is not None and at >= withdrawn_at:
            del self._withdrawn[(customer, grant)]
            self._held_because.pop((customer, grant), None)

    def withdrawn(self) -> Mapping[tuple[str, str], datetime]:
        """(customer, grant) -> when it was withdrawn."""
        return dict(self._withdrawn)

    def replace(self, policy: CompiledPolicy) -> None:
        """Hot reload of one customer's policy. Withdrawals stay; open aggregation windows of
        the old policy close now and are emitted by the next ``flush`` under the old version."""
        policies = dict(self._policies)
        policies[policy.customer] = policy
        self._index(list(policies.values()))  # raises before any state changes on overlap
        self._policies = policies
        for slot, window in list(self._windows.items()):
            if slot[0] == policy.customer:
                self._closed.append(window)
                del self._windows[slot]

    def policies(self) -> Sequence[CompiledPolicy]:
        return tuple(self._policies.values())

    def policy(self, customer: str) -> CompiledPolicy | None:
        return self._policies.get(customer)

    # -- explanation --------------------------------------------------------------------------

    def explain(self, decision: Decision, lang: str) -> str:
        """The decision in plain words, German (``de``) or English (``en``)."""
        policy = self._policies.get(decision.customer or "")
        recipient_name = device_name = profile = None
        if policy is not None:
            if decision.recipient is not None:
                recipient_name = policy.recipients.get(decision.recipient)
            if decision.device is not None:
                device = policy.device(decision.device)
                device_name = device.name if device else None
                profile = device.profile if device else None
        return render_explanation(
            decision, lang, recipient_name=recipient_name, device_name=device_name, profile=profile
        )


def _replace(decision: Decision, **changes: Any) -> Decision:
    return replace(decision, **changes)


def _internal(
    route: _Route | None,
    recipient: str | None,
    grant: CompiledGrant | None,
    exc: BaseException,
    topic: str,
) -> Decision:
    # Withheld, and the installer gets the traceback: a bug or a message we cannot handle.
    log.error(
        "the policy engine failed on a message on topic %.200r (customer %s, grant %s, "
        "recipient %s); it is withheld with reason internal_error",
        topic,
        route.policy.customer if route else None,
        grant.id if grant else None,
        recipient,
        exc_info=exc,
    )
    reason = Reason("internal_error", {"error": type(exc).__name__})
    return Decision(
        route.policy.customer if route else None,
        route.device.id if route else None,
        recipient,
        Outcome.WITHHELD,
        grant=grant.id if grant else None,
        policy_version=route.policy.version if route else None,
        withheld=_WHOLE,
        reason=reason,
        stream=route.stream if route else None,
    )


def _all_topics(
    policies: Sequence[CompiledPolicy],
) -> Iterator[tuple[CompiledPolicy, CompiledDevice, CompiledTopic]]:
    for policy in policies:
        for device in policy.devices:
            for topic in device.topics:
                yield policy, device, topic


def _check_overlaps(policies: Sequence[CompiledPolicy]) -> None:
    """A topic must belong to exactly one device stream, across all customers."""
    by_first: dict[str | None, list[tuple[CompiledPolicy, CompiledDevice, CompiledTopic]]] = {}
    for policy, device, topic in _all_topics(policies):
        first = topic.pattern.first_level
        candidates = (
            by_first.get(None, [])
            if first is not None
            else [entry for group in by_first.values() for entry in group]
        )
        if first is not None:
            candidates = candidates + by_first.get(first, [])
        for other_policy, other_device, other_topic in candidates:
            if patterns_overlap(topic.pattern.pattern, other_topic.pattern.pattern):
                raise PolicyError(
                    policy.source,
                    f"topic pattern {topic.pattern.pattern!r} of device {device.id!r} overlaps "
                    f"{other_topic.pattern.pattern!r} of device {other_device.id!r} "
                    f"(customer {other_policy.customer!r}, {other_policy.source}); "
                    "a topic must belong to exactly one device stream",
                    line=topic.line,
                    key="pattern",
                )
        by_first.setdefault(first, []).append((policy, device, topic))
