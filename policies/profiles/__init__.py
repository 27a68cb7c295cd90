"""Payload profiles: what the fields of real device formats mean, in words a customer reads.

A profile describes one device family (OwnTracks, Zigbee2MQTT, Tasmota, ...): the topic layouts
its firmware uses and, per field, what kind of data it is, whether it is personal data, how to
name it in German and English, and which treatment a policy author should consider. The profiles are
data, one file per family (``policies/profiles/<name>.yaml``, shipped in the wheel), read once at
import and validated by the pydantic models below; a mistake in a file is a ``ProfileDataError``
at file:line, found by the policy loader's YAML reader. Nothing else here reads a clock, a file or
a socket.

A profile file::

    name: owntracks                       # the file's name without .yaml
    title: {de: ..., en: ...}
    notes: what a policy author should know
    topics: [owntracks/{user}/{device}]   # most specific first; the first match wins
    fields:
      - path: lat
        category: location                # Category
        personal: direct                  # Personal
        label: {de: ..., en: ...}
        treatment: withhold               # optional: else the category's default (and detail)
        detail: "1000 m"                  # optional
        topics: [...]                     # optional: only for messages on these patterns

Paths use the policy path syntax: ``a.b`` a nested key, ``a[].b`` every element of array ``a``,
``$topic.<capture>`` a topic level captured by the profile's topic pattern, ``$payload`` a whole
plain-text body. A path naming an object covers everything below it.

Topic patterns use the one dialect of ``policies.topics`` (``{name}`` captures, ``+``, ``#``); here
a level may also mix literals and captures (``{app}@{tenant}``, ``openevse-{suffix}``).

Errors::

    EinblickError
    └── ProfileError
        ├── UnknownProfile(name, known)
        ├── UnknownLanguage(lang, known)
        └── ProfileDataError(path, message, line, column, key)   also a LocatedError
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Annotated

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, StringConstraints

from policies.errors import EinblickError, LocatedError
from policies.loader import Marks, load_yaml_model, locate
from policies.topics import TopicPattern

__all__ = [
    "LANGUAGES",
    "PROFILES",
    "Category",
    "Field",
    "Personal",
    "Profile",
    "ProfileDataError",
    "ProfileError",
    "Suggestion",
    "TopicMatch",
    "Treatment",
    "UnknownLanguage",
    "UnknownProfile",
    "category_label",
    "label",
    "level_captures",
    "load_profiles",
    "match_topic",
    "profile",
    "suggestions",
]

LANGUAGES: tuple[str, ...] = ("de", "en")


class ProfileError(EinblickError):
    """A profile lookup asked for something the profiles do not have."""


class UnknownProfile(ProfileError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown payload profile {name!r}; known profiles: {', '.join(known)}")


class UnknownLanguage(ProfileError):
    def __init__(self, lang: str, known: tuple[str, ...]) -> None:
        self.lang = lang
        self.known = known
        super().__init__(f"unknown language {lang!r}; expected one of: {', '.join(known)}")


class ProfileDataError(LocatedError, ProfileError):
    """A profile file is invalid: ``str()`` reads ``file:line:column: key: message``."""


class Category(StrEnum):
    LOCATION = "location"
    IDENTIFIER = "identifier"
    PRESENCE = "presence"
    TIMESTAMP = "timestamp"
    FREE_TEXT = "free_text"
    MEASUREMENT = "measurement"
    TECHNICAL = "technical"
    ENERGY_USE = "energy_use"
    NETWORK = "network"  # IP addresses, Wi-Fi names, access point MACs: they locate a home
    USER_SETTING = "user_setting"  # locale and similar traits of the person using the device
    RAW_DATA = "raw_data"  # opaque bytes that can only be passed whole or withheld


class Personal(StrEnum):
    NONE = "none"
    DIRECT = "direct"  # personal data or a persistent identifier in itself
    INDIRECT = "indirect"  # allows inferences about a person (energy use, CO2 as occupancy)


class Treatment(StrEnum):
    KEEP = "keep"
    COARSEN = "coarsen"
    PSEUDONYMISE = "pseudonymise"
    TRUNCATE = "truncate"
    ROUND = "round"
    AGGREGATE = "aggregate"
    WITHHOLD = "withhold"


_CATEGORY_LABELS: Mapping[Category, Mapping[str, str]] = MappingProxyType(
    {
        Category.LOCATION: {"de": "Standort", "en": "location"},
        Category.IDENTIFIER: {"de": "Gerätekennung", "en": "device identifier"},
        Category.PRESENCE: {"de": "Anwesenheit", "en": "presence"},
        Category.TIMESTAMP: {"de": "Zeitpunkt", "en": "time"},
        Category.FREE_TEXT: {"de": "Freitext", "en": "free text"},
        Category.MEASUREMENT: {"de": "Messwert", "en": "measurement"},
        Category.TECHNICAL: {"de": "technische Angabe", "en": "technical detail"},
        Category.ENERGY_USE: {"de": "Energieverbrauch", "en": "energy use"},
        Category.NETWORK: {"de": "Heimnetz-Angabe", "en": "home network detail"},
        Category.USER_SETTING: {"de": "persönliche Einstellung", "en": "personal setting"},
        Category.RAW_DATA: {"de": "Rohdaten", "en": "raw data"},
    }
)

# What a careful policy author would do with a field of this category, and why.
_DEFAULTS: Mapping[Category, tuple[Treatment, str, Mapping[str, str]]] = MappingProxyType(
    {
        Category.LOCATION: (
            Treatment.COARSEN,
            "1000 m",
            {
                "de": "Auf etwa 1 km vergröbern: der Empfänger sieht die Gegend, nicht die Adresse.",
                "en": "Coarsen to about 1 km: the recipient sees the area, not the address.",
            },
        ),
        Category.IDENTIFIER: (
            Treatment.PSEUDONYMISE,
            "",
            {
                "de": "Pseudonymisieren: Nachrichten bleiben zuordenbar, das Gerät unerkannt.",
                "en": "Pseudonymise: messages stay linkable, the device stays unrecognised.",
            },
        ),
        Category.PRESENCE: (
            Treatment.AGGREGATE,
            "mean over 15 min",
            {
                "de": "Über 15 Minuten zusammenfassen: zeigt Belegung, nicht das Kommen und Gehen.",
                "en": "Aggregate over 15 minutes: shows occupancy, not comings and goings.",
            },
        ),
        Category.TIMESTAMP: (
            Treatment.TRUNCATE,
            "minute",
            {
                "de": "Auf die Minute kürzen: genügt für Auswertungen, verrät weniger Gewohnheiten.",
                "en": "Truncate to the minute: enough for analysis, reveals fewer habits.",
            },
        ),
        Category.FREE_TEXT: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: Freitext kann alles enthalten, auch Namen und Orte.",
                "en": "Withhold: free text can contain anything, names and places included.",
            },
        ),
        Category.MEASUREMENT: (
            Treatment.KEEP,
            "",
            {
                "de": "Unverändert teilen: ein Messwert ohne Personenbezug.",
                "en": "Share unchanged: a measurement that says nothing about a person.",
            },
        ),
        Category.TECHNICAL: (
            Treatment.KEEP,
            "",
            {
                "de": "Unverändert teilen: technischer Zustand des Geräts.",
                "en": "Share unchanged: technical state of the device.",
            },
        ),
        Category.ENERGY_USE: (
            Treatment.AGGREGATE,
            "mean over 15 min",
            {
                "de": "Über 15 Minuten zusammenfassen: der Verlauf verrät sonst den Tagesablauf.",
                "en": "Aggregate over 15 minutes: the fine-grained curve reveals daily routines.",
            },
        ),
        Category.NETWORK: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: Netzwerknamen und -adressen lassen sich einem Haushalt zuordnen.",
                "en": "Withhold: network names and addresses can be traced to a household.",
            },
        ),
        Category.USER_SETTING: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: sagt etwas über die Person, nicht über das Gerät.",
                "en": "Withhold: says something about the person, not about the device.",
            },
        ),
        Category.RAW_DATA: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: undurchsichtige Rohdaten lassen sich nicht prüfen.",
                "en": "Withhold: opaque raw data cannot be inspected.",
            },
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Field:
    """One field (or topic level, or whole plain-text body) of a profile.

    ``topics`` limits the field to some of the profile's topic patterns; empty means all.
    """

    path: str
    category: Category
    personal: Personal
    labels: Mapping[str, str]  # language code -> label
    treatment: Treatment
    detail: str = ""
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested treatment for one field, with the reason in each language."""

    path: str
    category: Category
    personal: Personal
    treatment: Treatment
    detail: str
    rationale: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TopicMatch:
    pattern: str
    captures: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: Mapping[str, str]
    topics: tuple[str, ...]  # most specific first; the first pattern that matches wins
    fields: tuple[Field, ...]
    notes: str = ""

    @property
    def personal_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.personal is not Personal.NONE)

    def field(self, path: str, topic_pattern: str | None = None) -> Field | None:
        """The field at ``path`` (for messages on ``topic_pattern`` when given), or None."""
        for f in self.fields:
            if f.path != path:
                continue
            if topic_pattern is None or not f.topics or topic_pattern in f.topics:
                return f
        return None

    def match(self, topic: str) -> TopicMatch | None:
        """The first of this profile's topic patterns that ``topic`` matches, with captures."""
        for pattern in self.topics:
            captures = match_topic(pattern, topic)
            if captures is not None:
                return TopicMatch(pattern, MappingProxyType(captures))
        return None


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> TopicPattern:
    # Profiles name a handful of patterns each; compiling them once keeps matching cheap.
    return TopicPattern(pattern)


def match_topic(pattern: str, topic: str) -> dict[str, str] | None:
    """Captures of ``topic`` against ``pattern``, or None when it does not match."""
    return _pattern(pattern).match(topic)


def level_captures(pattern: str, level: int) -> tuple[str, ...]:
    """Names of the captures in topic level ``level`` (0-based) of ``pattern``."""
    return _pattern(pattern).level_captures(level)


_TREATMENT_RATIONALE: Mapping[Treatment, Mapping[str, str]] = MappingProxyType(
    {
        Treatment.KEEP: {
            "de": "Unverändert teilen: für sich genommen verrät der Wert wenig über eine Person.",
            "en": "Share unchanged: on its own the value reveals little about a person.",
        },
        Treatment.COARSEN: _DEFAULTS[Category.LOCATION][2],
        Treatment.PSEUDONYMISE: _DEFAULTS[Category.IDENTIFIER][2],
        Treatment.TRUNCATE: _DEFAULTS[Category.TIMESTAMP][2],
        Treatment.ROUND: {
            "de": "Runden: genügt für Abrechnung und Statistik, verrät weniger Verhalten.",
            "en": "Round: enough for billing and statistics, reveals less behaviour.",
        },
        Treatment.AGGREGATE: _DEFAULTS[Category.PRESENCE][2],
        Treatment.WITHHOLD: {
            "de": "Zurückhalten: verfeinert andere personenbezogene Angaben oder ist nicht prüfbar.",
            "en": "Withhold: refines other personal data or cannot be inspected.",
        },
    }
)


# A label or title: one line a customer reads, without outer spaces.
_Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class _Labels(BaseModel):
    """A text in every language a customer can choose: both, non-empty, no outer spaces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    de: _Text
    en: _Text


class _FieldEntry(BaseModel):
    """One entry under ``fields:`` in a profile file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    category: Category
    personal: Personal
    label: _Labels
    # Omitted: the category's default treatment and detail. Given: exactly this, detail or "".
    treatment: Treatment | None = None
    detail: str | None = None
    topics: tuple[str, ...] = ()

    def build(self) -> Field:
        default_treatment, default_detail, _ = _DEFAULTS[self.category]
        if self.treatment is None:
            treatment = default_treatment
            detail = default_detail if self.detail is None else self.detail
        else:
            treatment, detail = self.treatment, self.detail or ""
        return Field(
            path=self.path,
            category=self.category,
            personal=self.personal,
            labels=MappingProxyType(self.label.model_dump()),
            treatment=treatment,
            detail=detail,
            topics=self.topics,
        )


class _ProfileFile(BaseModel):
    """One file ``policies/profiles/<name>.yaml``: a device family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    title: _Labels
    notes: str = ""
    topics: Annotated[tuple[Annotated[str, StringConstraints(min_length=1)], ...], Len(1)]
    fields: Annotated[tuple[_FieldEntry, ...], Len(1)]


def _check(doc: _ProfileFile, path: str, stem: str, marks: Marks) -> None:
    """What pydantic cannot check one value at a time, located at file:line."""

    def fail(loc: tuple[int | str, ...], message: str) -> ProfileDataError:
        line, column = locate(marks, loc)
        key = ".".join(str(part) for part in loc)
        return ProfileDataError(path, message, line=line, column=column, key=key)

    if doc.name != stem:
        raise fail(
            ("name",),
            f"the profile is called {doc.name!r} but its file is {stem}.yaml; "
            "rename one so they agree",
        )
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for index, entry in enumerate(doc.fields):
        for position, pattern in enumerate(entry.topics):
            if pattern not in doc.topics:
                raise fail(
                    ("fields", index, "topics", position),
                    f"topic pattern {pattern!r} is not one of this profile's topics "
                    f"({', '.join(doc.topics)}); copy it from 'topics:' exactly",
                )
        if (entry.path, entry.topics) in seen:
            raise fail(("fields", index, "path"), f"field {entry.path!r} is described twice")
        seen.add((entry.path, entry.topics))
    captures = {name for pattern in doc.topics for name in _pattern(pattern).captures}
    labelled = {e.path.removeprefix("$topic.") for e in doc.fields if e.path.startswith("$topic.")}
    for index, entry in enumerate(doc.fields):
        name = entry.path.removeprefix("$topic.")
        if entry.path.startswith("$topic.") and name not in captures:
            raise fail(
                ("fields", index, "path"),
                f"no topic pattern captures {{{name}}}; captures are: "
                f"{', '.join(sorted(captures)) or 'none'}",
            )
    missing = sorted(captures - labelled)
    if missing:
        raise fail(
            ("topics",),
            f"topic captures without a '$topic.<name>' field: {', '.join(missing)}; "
            "describe each so a customer can read what it reveals",
        )


def _load(resource: Traversable) -> Profile:
    path = str(resource)  # the installed file, so the message points at what was read
    try:
        raw = resource.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileDataError(path, f"cannot read the profile: {exc}") from exc
    doc, marks = load_yaml_model(
        _ProfileFile,
        text,
        path,
        error=ProfileDataError,
        top="'name:', 'title:', 'topics:' and 'fields:'",
        spec="policies/profiles/__init__.py",
    )
    _check(doc, path, resource.name.removesuffix(".yaml"), marks)
    return Profile(
        doc.name,
        MappingProxyType(doc.title.model_dump()),
        doc.topics,
        tuple(entry.build() for entry in doc.fields),
        doc.notes,
    )


def load_profiles(directory: Traversable) -> Mapping[str, Profile]:
    """Every ``*.yaml`` profile in ``directory``, by name; a bad file raises ProfileDataError."""
    found = sorted(
        (r for r in directory.iterdir() if r.name.endswith(".yaml")), key=lambda r: r.name
    )
    return MappingProxyType({p.name: p for p in map(_load, found)})


# Read once at import: package data shipped in the wheel, no other I/O.
PROFILES: Mapping[str, Profile] = load_profiles(files(__name__))


def profile(name: str) -> Profile:
    """The profile called ``name``; raises ``UnknownProfile`` naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(name, tuple(sorted(PROFILES))) from None


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise UnknownLanguage(lang, LANGUAGES)


def label(profile_name: str, path: str, lang: str) -> str | None:
    """The label of ``path`` in ``profile_name`` in language ``lang``; None for unknown paths."""
    _check_lang(lang)
    f = profile(profile_name).field(path)
    return None if f is None else f.labels[lang]


def category_label(category: Category, lang: str) -> str:
    _check_lang(lang)
    return _CATEGORY_LABELS[category][lang]


_ORDER = {Personal.DIRECT: 0, Personal.INDIRECT: 1, Personal.NONE: 2}


def suggestions(profile_name: str) -> list[Suggestion]:
    """Suggested treatments for every field, direct personal data first, then indirect."""
    p = profile(profile_name)
    out = []
    for f in sorted(p.fields, key=lambda f: _ORDER[f.personal]):
        default_treatment, _, rationale = _DEFAULTS[f.category]
        if f.treatment is not default_treatment:
            rationale = _TREATMENT_RATIONALE[f.treatment]
        out.append(Suggestion(f.path, f.category, f.personal, f.treatment, f.detail, rationale))
    return out
