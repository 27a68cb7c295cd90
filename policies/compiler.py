"""Compiling a validated policy document into the engine's fast form, once per load.

Compiling resolves everything the engine would otherwise look up per message: device topic
patterns become regexes, field paths become a trie of treatment closures, recipients get their
display names (an unknown recipient is a PolicyError at the grant's line), topic templates are
checked against the captures they use, hours become minute ranges in the policy's timezone.
A grant's field lines become rules (``policies.rules``); grants for one recipient that cannot be
combined order-free are refused (``policies.overlaps``). What is legal but probably wrong is
``policies.lint``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from policies.decision import Alteration, LegalBasis, Reason
from policies.errors import PolicyError
from policies.model import (
    Condition,
    ConsentRecord,
    GrantSpec,
    PolicyDocument,
)
from policies.overlaps import Covered, check_overlaps, overlapping
from policies.paths import Node, Rule
from policies.rules import FieldLineError, aggregate_shadow, field_rules
from policies.topics import TopicPattern, TopicTemplate
from policies.treatment_specs import AggregateSpec
from policies.treatments import TreatmentFailed, to_number

__all__ = [
    "CompiledCondition",
    "CompiledDevice",
    "CompiledGrant",
    "CompiledPolicy",
    "CompiledTopic",
    "compile_policy",
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
    # What this grant makes other grants for its recipient honour (``policies.combine``): its
    # field trie, or an aggregate grant's summarised fields; None for a body released whole.
    shadow: Node | None
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
    # The other grants that give this grant's recipient one of its device streams, by id: where
    # they apply together, each leaf leaves in the most protective treatment (policies.combine).
    overlaps: tuple[str, ...] = ()

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


def _fail(doc: PolicyDocument, loc: tuple[int | str, ...], message: str) -> PolicyError:
    line, column = doc.locate(loc)
    key = ".".join(str(p) for p in loc) or None
    return PolicyError(doc.source, message, line=line, column=column, key=key)


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
        try:
            trie, whole = field_rules(grant)
        except FieldLineError as exc:
            raise _fail(doc, ("grants", g_index, "fields", exc.path), str(exc)) from exc
        if grant.aggregate is not None:
            shadow: Node | None = aggregate_shadow(grant.id, grant.aggregate)
        else:
            shadow = None if (whole is not None or grant.payload == "opaque") else trie
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
                shadow=shadow,
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
    coverage = [
        Covered(
            spec,
            index,
            frozenset(f"{d.id}/{s}" for d in devices for s in d.streams if grant.covers(d.id, s)),
        )
        for index, (spec, grant) in enumerate(zip(doc.grants, grants, strict=True))
    ]
    check_overlaps(doc, coverage)
    grants = [
        replace(grant, overlaps=overlapping(coverage, index)) for index, grant in enumerate(grants)
    ]
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
