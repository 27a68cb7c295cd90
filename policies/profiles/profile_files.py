"""Profile files: ``policies/profiles/<name>.yaml``, one per device family, validated into a
``Profile``; a mistake in a file is a ``ProfileDataError`` at file:line, found by the policy
loader's YAML reader.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Annotated

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, StringConstraints

from policies.loader import Marks, load_yaml_model, locate
from policies.profiles.profile import Field, Profile, ProfileDataError, compiled_pattern
from policies.profiles.vocabulary import ADVICE, Category, Personal, Treatment

__all__ = ["load_profiles"]


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
        default_treatment, default_detail, _ = ADVICE[self.category]
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
    captures = {name for pattern in doc.topics for name in compiled_pattern(pattern).captures}
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
        spec="policies/profiles/profile_files.py",
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
