"""One device family's profile as the rest of Einblick reads it: its topic patterns and its
fields (what each is, how personal, its label, the suggested treatment), and the errors of
looking one up.

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
from functools import lru_cache
from types import MappingProxyType

from policies.errors import EinblickError, LocatedError
from policies.profiles.vocabulary import Category, Personal, Treatment
from policies.topics import TopicPattern

__all__ = [
    "Field",
    "Profile",
    "ProfileDataError",
    "ProfileError",
    "Suggestion",
    "TopicMatch",
    "UnknownLanguage",
    "UnknownProfile",
    "compiled_pattern",
    "level_captures",
    "match_topic",
]


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
def compiled_pattern(pattern: str) -> TopicPattern:
    # Profiles name a handful of patterns each; compiling them once keeps matching cheap.
    return TopicPattern(pattern)


def match_topic(pattern: str, topic: str) -> dict[str, str] | None:
    """Captures of ``topic`` against ``pattern``, or None when it does not match."""
    return compiled_pattern(pattern).match(topic)


def level_captures(pattern: str, level: int) -> tuple[str, ...]:
    """Names of the captures in topic level ``level`` (0-based) of ``pattern``."""
    return compiled_pattern(pattern).level_captures(level)
