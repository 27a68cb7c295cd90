"""A profile as the rest of Einblick reads it: fields looked up by path and topic scope, topics
matched most specific first, errors that carry what was asked and what exists."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from policies.errors import EinblickError
from policies.profiles.profile import (
    Field,
    Profile,
    ProfileDataError,
    ProfileError,
    UnknownLanguage,
    UnknownProfile,
    compiled_pattern,
    match_topic,
)
from policies.profiles.vocabulary import Category, Personal, Treatment


def field(path: str, personal: Personal, *topics: str) -> Field:
    return Field(
        path=path,
        category=Category.TECHNICAL if personal is Personal.NONE else Category.IDENTIFIER,
        personal=personal,
        labels=MappingProxyType({"de": path, "en": path}),
        treatment=Treatment.KEEP,
        topics=topics,
    )


LAMP = Profile(
    name="lamp",
    title=MappingProxyType({"de": "Lampe", "en": "lamp"}),
    topics=("lamp/{id}/lwt", "lamp/{id}/+"),
    fields=(
        field("$topic.id", Personal.DIRECT),
        field("$payload", Personal.NONE, "lamp/{id}/lwt"),
        field("$payload", Personal.INDIRECT, "lamp/{id}/+"),
        field("lux", Personal.NONE),
    ),
)


def test_a_field_is_found_by_path_within_its_topic_scope() -> None:
    lwt = LAMP.field("$payload", "lamp/{id}/lwt")
    other = LAMP.field("$payload", "lamp/{id}/+")
    assert lwt is not None and lwt.personal is Personal.NONE
    assert other is not None and other.personal is Personal.INDIRECT
    # Without a topic, the first described; a field for all topics serves every topic.
    assert LAMP.field("$payload") is lwt
    assert LAMP.field("lux", "lamp/{id}/lwt") is LAMP.fields[3]
    assert LAMP.field("missing") is None


def test_personal_fields_are_those_not_marked_none() -> None:
    assert [f.path for f in LAMP.personal_fields] == ["$topic.id", "$payload"]


def test_the_first_matching_topic_wins_and_its_captures_are_read_only() -> None:
    found = LAMP.match("lamp/kitchen/lwt")
    assert found is not None and found.pattern == "lamp/{id}/lwt"
    assert dict(found.captures) == {"id": "kitchen"}
    with pytest.raises(TypeError):
        found.captures["id"] = "hall"  # type: ignore[index]
    state = LAMP.match("lamp/kitchen/state")
    assert state is not None and state.pattern == "lamp/{id}/+"
    assert LAMP.match("lamp/kitchen") is None and LAMP.match("tv/x/lwt") is None


def test_patterns_are_compiled_once() -> None:
    assert compiled_pattern("lamp/{id}/lwt") is compiled_pattern("lamp/{id}/lwt")
    assert match_topic("a/{x}@{y}", "a/1@2") == {"x": "1", "y": "2"}


def test_errors_carry_what_was_asked_and_what_exists() -> None:
    unknown = UnknownProfile("lampe", ("lamp", "tasmota"))
    assert (unknown.name, unknown.known) == ("lampe", ("lamp", "tasmota"))
    assert str(unknown) == "unknown payload profile 'lampe'; known profiles: lamp, tasmota"
    language = UnknownLanguage("fr", ("de", "en"))
    assert str(language) == "unknown language 'fr'; expected one of: de, en"
    data = ProfileDataError("lamp.yaml", "bad", line=3, column=5, key="fields.0")
    assert str(data) == "lamp.yaml:3:5: fields.0: bad"
    for error in (unknown, language, data):
        assert isinstance(error, ProfileError) and isinstance(error, EinblickError)
