"""The payload profiles are data files: each mistake in one is reported at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.profiles import PROFILES, ProfileDataError, load_profiles

GOOD = """\
name: lamp
title: {de: Lampe, en: lamp}
topics:
  - lamp/{id}/state
  - lamp/{id}/lwt
fields:
  - path: $topic.id
    category: identifier
    personal: direct
    label: {de: Geräte-ID, en: device ID}
  - path: $payload
    category: technical
    personal: none
    label: {de: Verbindungsstatus, en: connection status}
    topics: ["lamp/{id}/lwt"]
  - path: lux
    category: measurement
    personal: none
    label: {de: Helligkeit, en: brightness}
    treatment: round
    detail: "10"
"""


def _write(tmp_path: Path, text: str, name: str = "lamp.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def test_a_valid_file_loads_with_category_defaults_and_explicit_treatments(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    lamp = load_profiles(tmp_path)["lamp"]
    by_path = {f.path: f for f in lamp.fields}
    # No treatment given: the category's default with its detail.
    assert (by_path["$topic.id"].treatment.value, by_path["$topic.id"].detail) == (
        "pseudonymise",
        "",
    )
    assert (by_path["lux"].treatment.value, by_path["lux"].detail) == ("round", "10")
    assert by_path["$payload"].topics == ("lamp/{id}/lwt",)
    assert dict(lamp.title) == {"de": "Lampe", "en": "lamp"}


def test_the_shipped_files_are_the_profiles() -> None:
    shipped = Path(__file__).parents[2] / "policies" / "profiles"
    assert {p.stem for p in shipped.glob("*.yaml")} == set(PROFILES)
    assert load_profiles(shipped) == PROFILES


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    treatment: round\n",
            "    treatmnt: round\n",
            (20, "fields.2.treatmnt", "unknown key"),
        ),
        (
            "category: measurement",
            "category: weather",
            (17, "fields.2.category", "Input should be"),
        ),
        ("en: brightness}", "en: ' brightness'}", (19, "fields.2.label.en", "String should match")),
        ("label: {de: Helligkeit, ", "label: {", (19, "fields.2.label.de", "required key")),
        (
            'topics: ["lamp/{id}/lwt"]',
            'topics: ["lamp/{id}/LWT"]',
            (15, "fields.1.topics.0", "LWT"),
        ),
        ("path: lux", "path: $topic.id", (16, "fields.2.path", "described twice")),
        ("path: $topic.id", "path: $topic.serial", (7, "fields.0.path", "captures {serial}")),
        ("name: lamp", "name: lamps", (1, "name", "its file is lamp.yaml")),
        ("  - lamp/{id}/lwt\n", "  - lamp/{id}/lwt\n  - lamp/{id}/{room}\n", (3, "topics", "room")),
        (
            "    personal: none\n    label: {de: Hell",
            "    personal: *x\n    label: {de: Hell",
            (18, None, "aliases"),
        ),
    ],
)
def test_a_mistake_is_reported_at_its_file_and_line(
    tmp_path: Path, old: str, new: str, expected: tuple[int, str | None, str]
) -> None:
    line, key, message = expected
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ProfileDataError) as info:
        load_profiles(tmp_path)
    error = info.value
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}:")


def test_an_empty_file_says_what_a_profile_starts_with(tmp_path: Path) -> None:
    _write(tmp_path, "")
    with pytest.raises(ProfileDataError, match=r"lamp\.yaml: the file is empty; expected 'name:'"):
        load_profiles(tmp_path)


def test_text_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "lamp.yaml").write_bytes(b"name: l\xe4mp\n")
    with pytest.raises(ProfileDataError, match=r"lamp\.yaml: cannot read the profile"):
        load_profiles(tmp_path)
