"""The policy document: one YAML file per customer, validated by these pydantic models.

A complete example (see ``policies/examples/`` for three realistic ones)::

    einblick_policy: 1
    customer: baeckerei-schmidt          # id: lower-case letters, digits and '-'
    name: Bäckerei Schmidt
    language: de                         # de | en: the language of the customer's explanations
    timezone: Europe/Berlin              # for ``hours``; default Europe/Berlin
    devices:
      - id: oven-1
        name: Backofen 1
        kind: oven
        profile: null                    # payload family (owntracks, zigbee2mqtt, ...) for labels
        topics:
          - pattern: "bakery/oven-1/telemetry"   # {name} captures one level; + one level; # rest
            stream: telemetry
    grants:
      - id: maintenance
        recipient: oven-maker            # a recipient from the installer's configuration
        purpose: {de: "Fernwartung der Öfen", en: "Remote maintenance of the ovens"}
        legal_basis: contract            # consent | contract | legal_obligation |
                                         # vital_interests | public_task | legitimate_interests
        devices: [oven-1]                # device ids, or "*" for all; and/or kinds: [oven]
        streams: [telemetry]             # default: every stream
        topic: "ovens/{customer}/{device}/{stream}"   # what the recipient sees
        topic_levels: {user: pseudonymise}            # captured levels used in ``topic``
        fields:                          # default deny: only these paths leave
          temperature: keep
          "sensors.*.temperature": {round: 0.5}
          "readings[].value": keep
          serial: pseudonymise
          lat: {coarsen: {grid_m: 1000, lon: lon}}    # lat/lon pair, lon is the sibling key
          ts: {truncate: minute}                      # second | minute | hour | day
        payload: null                    # "opaque": release any body whole, uninspected
        valid: {from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z}
        consent: {given_by: "Anna Schmidt", given_at: 2026-01-05T10:00:00Z,
                  until: null, reference: "form 2026-17"}  # required for legal_basis consent
        hours: ["06:00-22:00"]           # local time windows; "22:00-06:00" spans midnight
        when: [{field: temperature, above: 100}]      # above | below | equals | not_equals
        rate_limit: 60s                  # at most one message per interval, per device
        aggregate: {window: 5m, fields: {power: [mean, max, count]}}  # mean|min|max|sum|count
        release: end_of_unit             # hold until the end of a truncated hour/day (default
                                         # immediately): delivery time does not undo truncation
    retention: {content_days: 90, entries_years: 3}   # optional; unset keys: einblick.yaml's

Paths: ``a.b`` nested keys, ``*`` any one key, ``a[]`` every element of array ``a``
(``readings[].value``), ``$payload`` the whole body (a JSON value or a plain-text body such as
``ON``; then it must be the only field). Keys containing ``.``, ``[`` or ``*`` cannot be named.

Times must carry a timezone (``Z`` or ``+01:00``). Durations: ``500ms``, ``60s``, ``5m``, ``1h``,
``1d``. Quote ``hours`` entries. ``aggregate`` excludes ``fields``, ``rate_limit`` and ``payload``;
``payload: opaque`` excludes ``fields`` and ``when``.

How a field may be treated (the treatment specs, ``aggregate``, the path and duration syntax) is
``policies.treatment_specs``; its names are re-exported here. The rights a customer has over a
grant follow from its legal basis (``allowed_actions``).
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue

from policies.decision import LegalBasis
from policies.treatment_specs import (
    AggregateSpec,
    Duration,
    Spec,
    Treatment,
    TruncateSpec,
    check_path,
)

__all__ = [
    "OBJECTABLE",
    "Condition",
    "ConsentRecord",
    "DeviceSpec",
    "GrantSpec",
    "LocalizedText",
    "PolicyDocument",
    "RetentionSpec",
    "TopicSpec",
    "Validity",
    "allowed_actions",
    "default_action",
    "policy_schema",
]

ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CAPTURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CAPTURE_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CAPTURED_LEVEL = re.compile(r"^(?:[^{}+#]|\{[A-Za-z_][A-Za-z0-9_]*\})+$")
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# A release held to the end of its unit (``release: end_of_unit``) whose grant also has allowed
# hours leaves at that end, also after the hours, if it can be sent within this many seconds of
# it (gateway/messages/sendtime_rules.py enforces it, policies/describe.py says it).
HELD_ON_TIME_S = 60


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("a time needs a timezone, e.g. 2026-01-01T00:00:00Z")
    return value


class LocalizedText(Spec):
    de: str = Field(min_length=1)
    en: str = Field(min_length=1)


class TopicSpec(Spec):
    pattern: str
    stream: str = "telemetry"

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not value or value.startswith("$"):
            raise ValueError(f"expected an MQTT topic pattern, found {value!r}")
        levels = value.split("/")
        for index, level in enumerate(levels):
            if level == "#":
                if index != len(levels) - 1:
                    raise ValueError("'#' may only be the last level")
            elif "{" in level or "}" in level:
                # A whole level ({user}) or text around captures ({app}@{tenant}, as The Things
                # Stack writes its topics); two captures need text between them to be told apart.
                if not _CAPTURED_LEVEL.match(level) or "}{" in level:
                    raise ValueError(
                        f"bad capture {level!r}: expected {{name}} with a-z, 0-9, _ (a level "
                        "may hold text around captures, like {app}@{tenant}, but no + or #)"
                    )
            elif ("+" in level and level != "+") or "#" in level:
                raise ValueError(f"wildcards must fill a whole level, found {level!r}")
        names = [name for lvl in levels for name in _CAPTURE_NAME.findall(lvl)]
        if len(names) != len(set(names)):
            raise ValueError("a capture name is used twice")
        return value

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value


class DeviceSpec(Spec):
    id: str
    name: str = Field(min_length=1)
    kind: str
    profile: str | None = None
    topics: list[TopicSpec] = Field(min_length=1)

    @field_validator("id", "kind")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value


class Validity(Spec):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    valid_from: datetime | None = Field(default=None, alias="from")
    until: datetime | None = None

    @field_validator("valid_from", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _order(self) -> Validity:
        if self.valid_from and self.until and self.until <= self.valid_from:
            raise ValueError("'until' must be after 'from'")
        return self


class ConsentRecord(Spec):
    given_by: str = Field(min_length=1)
    given_at: datetime
    until: datetime | None = None
    reference: str | None = None

    @field_validator("given_at", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class Condition(Spec):
    field: str
    above: float | None = None
    below: float | None = None
    equals: str | float | bool | None = None
    not_equals: str | float | bool | None = None

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        check_path(value)
        if "*" in value or "[" in value or value == "$payload":
            raise ValueError(f"a condition names one field (a.b), found {value!r}")
        return value

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [
            n for n in ("above", "below", "equals", "not_equals") if n in self.model_fields_set
        ]
        if len(given) != 1:
            raise ValueError("a condition needs exactly one of above, below, equals, not_equals")
        # A bound compares numbers: null (``above:`` left empty) or .nan would compare false for
        # every value, and the condition would silently never (or always) hold.
        for op in ("above", "below"):
            if op in given:
                bound = getattr(self, op)
                if bound is None or not math.isfinite(bound):
                    raise ValueError(
                        f"a condition's {op} needs a finite number (found "
                        f"{'nothing' if bound is None else bound}), e.g. {op}: 80"
                    )
        # NaN equals nothing, itself included: ``equals: .nan`` would never hold and
        # ``not_equals: .nan`` always (a grant's condition that lets everything through).
        for op in ("equals", "not_equals"):
            value = getattr(self, op)
            if op in given and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"a condition's {op} needs a finite number, a text or true/false (found "
                    f"{value}), e.g. {op}: 80"
                )
        return self


class GrantSpec(Spec):
    id: str
    recipient: str
    purpose: str | LocalizedText
    legal_basis: LegalBasis
    devices: list[str] | Literal["*"] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    streams: list[str] | None = None
    topic: str = "{customer}/{device}/{stream}"
    topic_levels: dict[str, Literal["keep", "pseudonymise"]] = Field(default_factory=dict)
    fields: dict[str, Treatment] = Field(default_factory=dict)
    payload: Literal["opaque"] | None = None
    valid: Validity | None = None
    consent: ConsentRecord | None = None
    hours: list[str] | None = None
    when: list[Condition] = Field(default_factory=list)
    rate_limit: Duration | None = None
    aggregate: AggregateSpec | None = None
    # ``end_of_unit``: hold each release until the end of the coarsest hour or day a field is
    # truncated to, so the time of delivery does not tell what the truncation hides.
    release: Literal["immediately", "end_of_unit"] = "immediately"

    @property
    def release_unit(self) -> Literal["hour", "day"] | None:
        """With ``release: end_of_unit``, the unit releases wait for the end of; else None."""
        if self.release != "end_of_unit":
            return None
        units = {t.truncate for t in self.fields.values() if isinstance(t, TruncateSpec)}
        return "day" if "day" in units else "hour" if "hour" in units else None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value

    @field_validator("fields")
    @classmethod
    def _paths(cls, value: dict[str, Treatment]) -> dict[str, Treatment]:
        for path in value:
            check_path(path)
        if "$payload" in value and len(value) > 1:
            raise ValueError("'$payload' releases the whole body and must be the only field")
        paths = sorted(value)
        for shorter, longer in itertools.pairwise(paths):
            if longer.startswith(shorter + ".") or longer.startswith(shorter + "["):
                raise ValueError(f"{shorter!r} already covers {longer!r}; name only one")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one window like '06:00-22:00', or leave it out")
            for window in value:
                if not isinstance(window, str) or not HOURS.match(window):
                    raise ValueError(f"expected 'HH:MM-HH:MM' (quoted), found {window!r}")
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not value or "+" in value or "#" in value or value.startswith("$"):
            raise ValueError(f"expected a topic template without wildcards, found {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GrantSpec:
        if not self.devices and not self.kinds:
            raise ValueError("name the devices (ids or '*') and/or kinds this grant covers")
        if self.legal_basis is LegalBasis.CONSENT and self.consent is None:
            raise ValueError("legal_basis consent needs a consent record (given_by, given_at)")
        if self.payload == "opaque" and (self.fields or self.when):
            raise ValueError("payload: opaque releases the body uninspected; drop fields/when")
        if self.aggregate is not None and (self.fields or self.rate_limit or self.payload):
            raise ValueError("aggregate sends only the aggregates; drop fields/rate_limit/payload")
        if self.release == "end_of_unit" and self.release_unit is None:
            raise ValueError(
                "release: end_of_unit holds releases until the end of the hour or day a field "
                "is truncated to, but no field here has {truncate: hour} or {truncate: day}"
            )
        return self

    def purpose_text(self) -> dict[str, str]:
        if isinstance(self.purpose, str):
            return {"de": self.purpose, "en": self.purpose}
        return {"de": self.purpose.de, "en": self.purpose.en}


class RetentionSpec(Spec):
    """How long the log keeps a customer's data. ``content_days``: the erasable content of an
    entry (the payload as it left, its topic) is deleted once older; ``entries_years``: entries
    older are dropped behind a signed checkpoint (an anchor), so the rest still verifies. Unset:
    kept (the box's default from einblick.yaml applies first)."""

    content_days: int | None = Field(default=None, ge=1, le=36_500)
    entries_years: int | None = Field(default=None, ge=1, le=100)


class PolicyDocument(Spec):
    einblick_policy: Literal[1]
    customer: str
    name: str = Field(min_length=1)
    language: Literal["de", "en"] = "de"
    timezone: str = "Europe/Berlin"
    devices: list[DeviceSpec] = Field(default_factory=list)
    grants: list[GrantSpec] = Field(default_factory=list)
    retention: RetentionSpec | None = None

    # Set by the loader: where the document came from, for file:line errors and the version.
    _source: str = PrivateAttr(default="<model>")
    _sha256: str | None = PrivateAttr(default=None)
    _marks: dict[tuple[int | str, ...], tuple[int, int]] = PrivateAttr(default_factory=dict)

    @field_validator("customer")
    @classmethod
    def _customer(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; expected e.g. Europe/Berlin") from exc
        return value

    @property
    def source(self) -> str:
        return self._source

    def locate(self, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the node at ``loc``, or of its nearest located parent."""
        for end in range(len(loc), -1, -1):
            mark = self._marks.get(loc[:end])
            if mark is not None:
                return mark
        return None, None


def policy_schema() -> JsonSchemaValue:
    """The JSON Schema of a policy document, for editors (pydantic's type for a schema
    document: any JSON under its keywords, so no narrower type fits)."""
    schema = PolicyDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Einblick policy"
    return schema


# The rights a customer has over a grant follow from its legal basis (GDPR): consent can be
# withdrawn (Art. 7(3)); processing on legitimate interests or a public task can be objected to
# (Art. 21(1) names these bases only); any processing can be restricted (Art. 18). Pure policy
# knowledge, so the gateway, the TUI and the portal offer exactly the same actions.
OBJECTABLE = (LegalBasis.LEGITIMATE_INTERESTS, LegalBasis.PUBLIC_TASK)


def default_action(basis: LegalBasis | str) -> str:
    """The action a customer most likely means for a grant on ``basis`` (the dialog's default)."""
    basis = LegalBasis(basis)
    if basis is LegalBasis.CONSENT:
        return "withdraw"
    if basis in OBJECTABLE:
        return "object"
    return "restrict"


def allowed_actions(basis: LegalBasis | str) -> tuple[str, ...]:
    """The actions that hold a grant on ``basis`` back, the intended one first."""
    basis = LegalBasis(basis)
    if basis is LegalBasis.CONSENT:
        return ("withdraw",)
    if basis in OBJECTABLE:
        return ("object", "restrict")
    return ("restrict",)
