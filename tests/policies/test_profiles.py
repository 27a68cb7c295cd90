"""Payload profiles against the real device messages in tests/data/payloads."""

from __future__ import annotations

import re
from typing import Any

import pytest

from policies.profiles import (
    LANGUAGES,
    PROFILES,
    Category,
    Personal,
    Treatment,
    UnknownLanguage,
    UnknownProfile,
    category_label,
    label,
    level_captures,
    match_topic,
    profile,
    suggestions,
)
from tests.data import corpus

_TOPIC_LEVEL = re.compile(r"^\$topic\[(\d+)\]$")


SAMPLES = [(s.family, s.line, s.raw) for s in corpus()]


def test_samples_exist_for_every_profile() -> None:
    assert {name for name, _, _ in SAMPLES} == set(PROFILES)


@pytest.mark.parametrize(
    ("family", "line", "sample"), SAMPLES, ids=[f"{f}:{n}" for f, n, _ in SAMPLES]
)
def test_every_sample_topic_matches_a_profile_pattern(
    family: str, line: int, sample: dict[str, Any]
) -> None:
    assert profile(family).match(sample["topic"]) is not None, sample["topic"]


def _personal_entries() -> list[tuple[str, str, str]]:
    return [
        (family, sample["topic"], entry)
        for family, _, sample in SAMPLES
        for entry in sample["personal_fields"]
    ]


@pytest.mark.parametrize(("family", "topic", "entry"), _personal_entries())
def test_every_personal_field_in_the_samples_is_direct_personal_in_the_profile(
    family: str, topic: str, entry: str
) -> None:
    p = profile(family)
    m = p.match(topic)
    assert m is not None
    level = _TOPIC_LEVEL.match(entry)
    if level:
        names = level_captures(m.pattern, int(level.group(1)))
        assert names, f"{m.pattern} captures nothing at level {level.group(1)}"
        paths = [f"$topic.{name}" for name in names]
    else:
        paths = [entry]
    for path in paths:
        f = p.field(path, m.pattern)
        assert f is not None, f"{family}: no field {path} for {m.pattern}"
        assert f.personal is Personal.DIRECT, f"{family}: {path} is {f.personal}"
        assert f.treatment is not Treatment.KEEP, f"{family}: {path} kept unchanged"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_field_has_a_label_in_both_languages(name: str) -> None:
    p = profile(name)
    assert p.fields
    assert set(p.title) == set(LANGUAGES)
    for f in p.fields:
        for lang in LANGUAGES:
            text = label(name, f.path, lang)
            assert text and text.strip() == text, (name, f.path, lang)
        for pattern in f.topics:
            assert pattern in p.topics, (name, f.path, pattern)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_field_paths_name_only_captures_the_patterns_have(name: str) -> None:
    p = profile(name)
    captures = {c for pattern in p.topics for c in re.findall(r"\{(\w+)\}", pattern)}
    topic_fields = {f.path.removeprefix("$topic.") for f in p.fields if f.path.startswith("$t")}
    assert topic_fields <= captures
    assert captures <= topic_fields, f"unlabelled topic captures: {captures - topic_fields}"


def test_paths_are_unique_per_topic_scope() -> None:
    for p in PROFILES.values():
        keys = [(f.path, f.topics) for f in p.fields]
        assert len(keys) == len(set(keys)), p.name


@pytest.mark.parametrize(
    ("name", "path", "de", "en"),
    [
        ("owntracks", "lat", "Standort (Breitengrad)", "location (latitude)"),
        ("owntracks", "$topic.user", "Benutzername", "user name"),
        ("ble_presence", "$topic.mac", "Bluetooth-MAC-Adresse", "Bluetooth MAC address"),
        ("homeassistant", "$payload", "Bewegung erkannt (an/aus)", "motion detected (on/off)"),
    ],
)
def test_label_returns_the_wording_a_customer_reads(name: str, path: str, de: str, en: str) -> None:
    assert label(name, path, "de") == de
    assert label(name, path, "en") == en


def test_label_of_an_unknown_path_is_none() -> None:
    assert label("owntracks", "no.such.field", "de") is None


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(UnknownProfile) as info:
        profile("ownttracks")
    assert info.value.name == "ownttracks"
    assert "owntracks" in str(info.value) and "zigbee2mqtt" in str(info.value)
    assert not isinstance(info.value, KeyError)
    with pytest.raises(UnknownProfile):
        label("nope", "lat", "de")
    with pytest.raises(UnknownProfile):
        suggestions("nope")


def test_unknown_language_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(UnknownLanguage, match=r"'fr'.*de, en"):
        label("owntracks", "lat", "fr")


@pytest.mark.parametrize("category", list(Category))
def test_every_category_has_labels(category: Category) -> None:
    for lang in LANGUAGES:
        assert category_label(category, lang)
    assert category_label(Category.LOCATION, "de") == "Standort"
    assert category_label(Category.IDENTIFIER, "de") == "Gerätekennung"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_suggestions_cover_every_field_personal_first(name: str) -> None:
    out = suggestions(name)
    assert {s.path for s in out} == {f.path for f in profile(name).fields}
    order = [s.personal for s in out]
    rank = {Personal.DIRECT: 0, Personal.INDIRECT: 1, Personal.NONE: 2}
    assert order == sorted(order, key=rank.__getitem__)
    for s in out:
        assert set(s.rationale) == set(LANGUAGES)


def test_suggested_treatments_follow_the_category() -> None:
    by_path = {s.path: s for s in suggestions("owntracks")}
    assert (by_path["lat"].treatment, by_path["lat"].detail) == (Treatment.COARSEN, "1000 m")
    assert by_path["$topic.user"].treatment is Treatment.PSEUDONYMISE
    assert (by_path["tst"].treatment, by_path["tst"].detail) == (Treatment.TRUNCATE, "minute")
    assert by_path["tag"].treatment is Treatment.WITHHOLD
    assert by_path["batt"].treatment is Treatment.KEEP
    assert "1 km" in by_path["lat"].rationale["de"]


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        (
            "owntracks/{user}/{device}",
            "owntracks/jjolie/phone",
            {"user": "jjolie", "device": "phone"},
        ),
        ("owntracks/{user}/{device}", "owntracks/jjolie/phone/status", None),
        ("owntracks/{user}/{device}", "owntracks//phone", None),
        (
            "v3/{app}@{tenant}/devices/{dev}/up",
            "v3/icicle-monitor@ttn/devices/portenta-h7-icicle-00/up",
            {"app": "icicle-monitor", "tenant": "ttn", "dev": "portenta-h7-icicle-00"},
        ),
        ("v3/{app}@{tenant}/devices/{dev}/up", "v3/app1/devices/dev1/up", None),
        (
            "spBv1.0/{group}/DDATA/{node}/{device}",
            "spBv1.0/Sparkplug B Devices/DDATA/Raspberry Pi/Pibrella",
            {"group": "Sparkplug B Devices", "node": "Raspberry Pi", "device": "Pibrella"},
        ),
        ("openevse-{suffix}/{metric}", "openevse-55ad/amp", {"suffix": "55ad", "metric": "amp"}),
        ("tele/{topic}/SENSOR", "tele/a.b+c/SENSOR", {"topic": "a.b+c"}),
        ("tele/{topic}/SENSOR", "tele/x/SENSORS", None),
    ],
)
def test_match_topic(pattern: str, topic: str, expected: dict[str, str] | None) -> None:
    assert match_topic(pattern, topic) == expected


def test_level_captures() -> None:
    assert level_captures("v3/{app}@{tenant}/devices/{dev}/up", 1) == ("app", "tenant")
    assert level_captures("v3/{app}@{tenant}/devices/{dev}/up", 2) == ()
    assert level_captures("v3/{app}@{tenant}/devices/{dev}/up", 9) == ()


def test_first_matching_pattern_wins() -> None:
    m = profile("zigbee2mqtt").match("zigbee2mqtt/bridge/event")
    assert m is not None and m.pattern == "zigbee2mqtt/bridge/{kind}"
    m = profile("zigbee2mqtt").match("zigbee2mqtt/0x00158d0001e50d78")
    assert m is not None and dict(m.captures) == {"friendly_name": "0x00158d0001e50d78"}


def test_profiles_are_read_only() -> None:
    with pytest.raises(TypeError):
        PROFILES["x"] = PROFILES["owntracks"]  # type: ignore[index]
