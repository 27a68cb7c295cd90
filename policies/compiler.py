"""Compiling a validated policy document into the engine's fast form, once per load.

Compiling resolves everything the engine would otherwise look up per message: device topic
patterns become regexes, field paths become a trie of treatment closures, recipients get their
display names (an unknown recipient is a PolicyError at the grant's line), topic templates are
checked against the captures they use, hours become minute ranges in the policy's timezone.
``lint`` finds what is legal but probably wrong: grants that release nothing or overlap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from policies.decision import Alteration, LegalBasis, Reason
from policies.errors import PolicyError
from policies.model import (
    AggregateSpec,
    CoarsenSpec,
    Condition,
    ConsentRecord,
    GrantSpec,
    PolicyDocument,
    RoundSpec,
    Treatment,
    TruncateSpec,
)
from policies.paths import Node, Release, Rule, coarsen_rule, insert
from policies.topics import TopicPattern, TopicTemplate
from policies.treatments import (
    TreatmentFailed,
    decimals_of,
    pseudonymise,
    round_to,
    to_number,
    truncate,
)

__all__ = [
    "CompiledCondition",
    "CompiledDevice",
    "CompiledGrant",
    "CompiledPolicy",
    "CompiledTopic",
    "PolicyWarning",
    "compile_policy",
    "lint",
]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTopic:
    pattern: TopicPattern
    stream: str
    line: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class CompiledDevice:
    id: str
    name: str
    kind: str
    profile: str | None
    topics: tuple[CompiledTopic, ...]

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.stream for t in self.topics))


@dataclass(frozen=True, slots=True, eq=False)
class CompiledCondition:
    keys: tuple[str, ...]
    op: str  # above | below | equals | not_equals
    target: str | float | bool | None
    text: str  # "temperature > 100": shown in explanations, never a message value

    def holds(self, root: object) -> bool:
        value = root
        for key in self.keys:
            if type(value) is not dict or key not in value:
                return False
            value = value[key]
        try:
            if self.op in ("above", "below"):
                number = to_number(value)
                assert isinstance(self.target, float)
                return number > self.target if self.op == "above" else number < self.target
        except TreatmentFailed:
            return False
        equal = _equal(value, self.target)
        return equal if self.op == "equals" else not equal


def _equal(value: object, target: object) -> bool:
    if isinstance(target, bool) or target is None or isinstance(value, bool):
        return value is target or (isinstance(value, bool) and value == target)
    if isinstance(target, float):
        try:
            return to_number(value) == target
        except TreatmentFailed:
            return False
    return value == target


@dataclass(frozen=True, slots=True, eq=False)
class CompiledGrant:
    id: str
    recipient: str
    recipient_name: str
    purpose: Mapping[str, str]
    legal_basis: LegalBasis
    consent: ConsentRecord | None
    valid_from: datetime | None
    valid_until: datetime | None
    devices: tuple[str, ...]
    streams: frozenset[str] | None
    template: TopicTemplate
    topic_levels: Mapping[str, str]
    trie: Node
    whole: Rule | None  # the ``$payload`` rule, when the grant releases the body as one value
    opaque: bool
    conditions: tuple[CompiledCondition, ...]
    hours: tuple[tuple[int, int], ...] | None
    timezone: ZoneInfo
    rate_limit: float | None
    aggregate: AggregateSpec | None
    needs_key: bool
    releases_anything: bool
    spec: GrantSpec
    line: int | None = None
    rate_reason: Reason = field(default_factory=lambda: Reason("rate_limited"))
    hours_reason: Reason = field(default_factory=lambda: Reason("outside_hours"))
    nothing_reason: Reason = field(default_factory=lambda: Reason("nothing_released"))
    condition_reasons: tuple[Reason, ...] = ()
    aggregating_reason: Reason = field(default_factory=lambda: Reason("aggregating"))
    topic_alterations: Mapping[str, Alteration] = field(default_factory=dict)
    static_topic: bool = False  # the template uses only customer, device and stream

    def covers(self, device: str, stream: str) -> bool:
        return device in self.devices and (self.streams is None or stream in self.streams)

    def validity_reason(self, now: datetime) -> Reason | None:
        if self.valid_from is not None and now < self.valid_from:
            return Reason("not_yet_valid", {"what": "validity"})
        if self.valid_until is not None and now >= self.valid_until:
            return Reason("expired", {"what": "validity"})
        if self.consent is not None:
            if now < self.consent.given_at:
                return Reason("not_yet_valid", {"what": "consent"})
            if self.consent.until is not None and now >= self.consent.until:
                return Reason("expired", {"what": "consent"})
        return None

    def in_hours(self, now: datetime) -> bool:
        if self.hours is None:
            return True
        local = now.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        for start, end in self.hours:
            if start < end:
                if start <= minute < end:
                    return True
            elif start == end or minute >= start or minute < end:
                return True
        return False


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicy:
    customer: str
    name: str
    language: str
    timezone: str
    version: str  # sha256 hex of the policy file's bytes
    source: str
    devices: tuple[CompiledDevice, ...]
    grants: tuple[CompiledGrant, ...]
    recipients: Mapping[str, str]  # recipient name -> display name, as configured
    document: PolicyDocument

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def short_version(self) -> str:
        return self.version[:12]

    def device(self, device_id: str) -> CompiledDevice | None:
        for device in self.devices:
            if device.id == device_id:
                return device
        return None

    def grant(self, grant_id: str) -> CompiledGrant | None:
        for grant in self.grants:
            if grant.id == grant_id:
                return grant
        return None


@dataclass(frozen=True, slots=True)
class PolicyWarning:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: warning: {self.message}"


def _fail(doc: PolicyDocument, loc: tuple[int | str, ...], message: str) -> PolicyError:
    line, column = doc.locate(loc)
    key = ".".join(str(p) for p in loc) or None
    return PolicyError(doc.source, message, line=line, column=column, key=key)


def _rule(treatment: Treatment) -> Rule:
    if treatment == "keep":
        return Rule("keep", "")
    if treatment == "pseudonymise":

        def pseudo(value: object, parent: object, rel: Release) -> object:
            assert rel.key is not None  # the engine withholds ("erased") before walking
            return pseudonymise(value, rel.key)

        return Rule("pseudonymise", "", pseudo)
    if isinstance(treatment, RoundSpec):
        step = treatment.round
        decimals = decimals_of(step)
        return Rule("round", f"{step:g}", lambda v, p, r: round_to(v, step, decimals))
    if isinstance(treatment, TruncateSpec):
        unit = treatment.truncate
        return Rule("truncate", unit, lambda v, p, r: truncate(v, unit))
    raise AssertionError(f"unexpected treatment {treatment!r}")


def _trie(doc: PolicyDocument, index: int, grant: GrantSpec) -> tuple[Node, Rule | None]:
    root = Node()
    whole: Rule | None = None
    for path, treatment in grant.fields.items():
        loc: tuple[int | str, ...] = ("grants", index, "fields", path)
        try:
            if isinstance(treatment, CoarsenSpec):
                params = treatment.coarsen
                if path == "$payload" or path.endswith("[]"):
                    raise ValueError("coarsen names the latitude key; its sibling holds lon")
                head, _, last = path.rpartition(".")
                partner = f"{head}.{params.lon}" if head else params.lon
                if partner == path:
                    raise ValueError("lon must name the sibling key, not the latitude itself")
                insert(root, path, coarsen_rule(params.grid_m, params.lon, True, path))
                insert(root, partner, coarsen_rule(params.grid_m, last, False, path))
            elif path == "$payload":
                whole = _rule(treatment)
                whole.source = path
            else:
                rule = _rule(treatment)
                rule.source = path
                insert(root, path, rule)
        except ValueError as exc:
            raise _fail(doc, loc, str(exc)) from exc
    return root, whole


def _condition(spec: Condition) -> CompiledCondition:
    keys = tuple(spec.field.split("."))
    for op, symbol in (("above", ">"), ("below", "<"), ("equals", "="), ("not_equals", "≠")):
        if op in spec.model_fields_set:
            target: Any = getattr(spec, op)
            if op in ("above", "below") or (
                isinstance(target, int | float) and not isinstance(target, bool)
            ):
                target = float(target)
            shown = orjson.dumps(target).decode() if not isinstance(target, str) else target
            return CompiledCondition(keys, op, target, f"{spec.field} {symbol} {shown}")
    raise AssertionError("validated: exactly one operator")


def _hours(windows: list[str]) -> tuple[tuple[int, int], ...]:
    out = []
    for window in windows:
        start, end = window.split("-")
        out.append(
            (
                int(start[:2]) * 60 + int(start[3:]),
                int(end[:2]) * 60 + int(end[3:]),
            )
        )
    return tuple(out)


def compile_policy(doc: PolicyDocument, recipients: Mapping[str, str]) -> CompiledPolicy:
    """Compile ``doc``; ``recipients`` maps each configured recipient name to its display name."""
    zone = ZoneInfo(doc.timezone)
    devices: list[CompiledDevice] = []
    for d_index, spec in enumerate(doc.devices):
        topics = tuple(
            CompiledTopic(
                TopicPattern(t.pattern), t.stream, doc.locate(("devices", d_index, "topics", i))[0]
            )
            for i, t in enumerate(spec.topics)
        )
        devices.append(CompiledDevice(spec.id, spec.name, spec.kind, spec.profile, topics))
    grants: list[CompiledGrant] = []
    for g_index, grant in enumerate(doc.grants):
        if grant.recipient not in recipients:
            known = ", ".join(sorted(recipients)) or "none"
            raise _fail(
                doc,
                ("grants", g_index, "recipient"),
                f"unknown recipient {grant.recipient!r} (configured: {known})",
            )
        covered = tuple(
            d.id
            for d in devices
            if grant.devices == "*"
            or (isinstance(grant.devices, list) and d.id in grant.devices)
            or d.kind in grant.kinds
        )
        streams = frozenset(grant.streams) if grant.streams is not None else None
        if streams is not None:
            offered = {s for d in devices if d.id in covered for s in d.streams}
            for s_index, stream in enumerate(grant.streams or ()):
                if stream not in offered:
                    raise _fail(
                        doc,
                        ("grants", g_index, "streams", s_index),
                        f"none of the grant's devices has a stream {stream!r} "
                        f"(streams: {', '.join(sorted(offered)) or 'none'})",
                    )
        try:
            template = TopicTemplate(grant.topic)
        except ValueError as exc:
            raise _fail(doc, ("grants", g_index, "topic"), str(exc)) from exc
        for name in template.captures:
            if name not in grant.topic_levels:
                raise _fail(
                    doc,
                    ("grants", g_index, "topic"),
                    f"the template uses topic level {{{name}}}; say how it may leave in "
                    f"topic_levels ({name}: keep or {name}: pseudonymise)",
                )
            for device in devices:
                if device.id not in covered:
                    continue
                for topic in device.topics:
                    if (streams is None or topic.stream in streams) and (
                        name not in topic.pattern.captures
                    ):
                        raise _fail(
                            doc,
                            ("grants", g_index, "topic"),
                            f"{{{name}}} is not captured by device {device.id!r} "
                            f"pattern {topic.pattern.pattern!r}",
                        )
        for name in grant.topic_levels:
            if name not in template.captures:
                raise _fail(
                    doc,
                    ("grants", g_index, "topic_levels", name),
                    f"{name!r} is not used in the topic template {grant.topic!r}",
                )
        trie, whole = _trie(doc, g_index, grant)
        needs_key = "pseudonymise" in grant.topic_levels.values() or any(
            t == "pseudonymise" for t in grant.fields.values()
        )
        valid = grant.valid
        grants.append(
            CompiledGrant(
                id=grant.id,
                recipient=grant.recipient,
                recipient_name=recipients[grant.recipient],
                purpose=grant.purpose_text(),
                legal_basis=grant.legal_basis,
                consent=grant.consent,
                valid_from=valid.valid_from if valid else None,
                valid_until=valid.until if valid else None,
                devices=covered,
                streams=streams,
                template=template,
                topic_levels=dict(grant.topic_levels),
                trie=trie,
                whole=whole,
                opaque=grant.payload == "opaque",
                conditions=tuple(_condition(c) for c in grant.when),
                hours=_hours(grant.hours) if grant.hours else None,
                timezone=zone,
                rate_limit=grant.rate_limit,
                aggregate=grant.aggregate,
                needs_key=needs_key,
                releases_anything=bool(grant.fields or grant.payload or grant.aggregate),
                spec=grant,
                line=doc.locate(("grants", g_index))[0],
                aggregating_reason=Reason(
                    "aggregating",
                    {"window": f"{grant.aggregate.window:g} s"} if grant.aggregate else {},
                ),
                hours_reason=Reason("outside_hours", {"hours": ", ".join(grant.hours or ())}),
                nothing_reason=Reason(
                    "nothing_released",
                    {
                        "fields": ", ".join(
                            grant.aggregate.fields if grant.aggregate else grant.fields
                        )
                    },
                ),
                condition_reasons=tuple(
                    Reason("condition_not_met", {"condition": c.text})
                    for c in map(_condition, grant.when)
                ),
                topic_alterations={
                    name: Alteration(f"$topic.{name}", "pseudonymise")
                    for name, how in grant.topic_levels.items()
                    if how == "pseudonymise"
                },
                static_topic=not (template.names - {"customer", "device", "stream"}),
                rate_reason=Reason(
                    "rate_limited",
                    {"interval": f"{grant.rate_limit:g} s"} if grant.rate_limit else {},
                ),
            )
        )
    version = doc._sha256 or hashlib.sha256(orjson.dumps(doc.model_dump(mode="json"))).hexdigest()
    return CompiledPolicy(
        customer=doc.customer,
        name=doc.name,
        language=doc.language,
        timezone=doc.timezone,
        version=version,
        source=doc.source,
        devices=tuple(devices),
        grants=tuple(grants),
        recipients=dict(recipients),
        document=doc,
    )


def lint(policy: CompiledPolicy) -> list[PolicyWarning]:
    """Legal but probably wrong: grants that release nothing, cover nothing, or overlap."""
    out: list[PolicyWarning] = []
    for grant in policy.grants:
        if not grant.releases_anything:
            out.append(
                PolicyWarning(
                    policy.source,
                    grant.line,
                    f"grant {grant.id!r} releases nothing (no fields, payload or aggregate)",
                )
            )
        if not grant.devices:
            out.append(
                PolicyWarning(policy.source, grant.line, f"grant {grant.id!r} covers no device")
            )
        out.extend(_timing_warnings(policy, grant))
        out.extend(_topic_warnings(policy, grant))
    for index, later in enumerate(policy.grants):
        for earlier in policy.grants[:index]:
            if earlier.recipient != later.recipient:
                continue
            shared = [
                f"{d.id}/{s}"
                for d in policy.devices
                for s in d.streams
                if earlier.covers(d.id, s) and later.covers(d.id, s)
            ]
            if shared:
                out.append(
                    PolicyWarning(
                        policy.source,
                        later.line,
                        f"grant {later.id!r} overlaps grant {earlier.id!r} for recipient "
                        f"{later.recipient!r} on {', '.join(shared)}; the first grant that "
                        "releases something decides",
                    )
                )
    return out


def _timing_warnings(policy: CompiledPolicy, grant: CompiledGrant) -> list[PolicyWarning]:
    """A time truncated to the hour or day still leaves within milliseconds of the message: the
    recipient reads the exact time from the arrival. Say so, and what helps."""
    out = []
    for path, treatment in grant.spec.fields.items():
        if isinstance(treatment, TruncateSpec) and treatment.truncate in ("hour", "day"):
            out.append(
                PolicyWarning(
                    policy.source,
                    policy.document.locate(("grants", policy.grants.index(grant), "fields", path))[
                        0
                    ],
                    f"grant {grant.id!r} truncates {path!r} to the {treatment.truncate}, but "
                    "messages leave the moment they arrive, so the recipient learns the exact "
                    "time from the delivery; to hide it, release summaries instead (aggregate "
                    f"with window: 1{treatment.truncate[0]}) or withhold the field",
                )
            )
    return out


def _topic_warnings(policy: CompiledPolicy, grant: CompiledGrant) -> list[PolicyWarning]:
    """``{topic}`` in an upstream topic passes the device's own topic on unchanged, with every
    level it captures (user names, device names), whatever ``topic_levels`` says."""
    if "topic" not in grant.template.names:
        return []
    levels: dict[str, None] = {}
    for device in policy.devices:
        if device.id not in grant.devices:
            continue
        for topic in device.topics:
            if grant.streams is None or topic.stream in grant.streams:
                levels.update(dict.fromkeys(topic.pattern.captures))
    if not levels:
        return []
    names = ", ".join(f"{{{name}}}" for name in levels)
    return [
        PolicyWarning(
            policy.source,
            policy.document.locate(("grants", policy.grants.index(grant), "topic"))[0],
            f"grant {grant.id!r} uses {{topic}}: the device's topic leaves unchanged, including "
            f"its levels {names}, which topic_levels cannot pseudonymise; name the levels in the "
            "template instead (for example {customer}/{device}/{stream}) and say in topic_levels "
            "how each may leave",
        )
    ]
