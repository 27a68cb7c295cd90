"""The catalog: every key in both languages, with the same placeholders."""

from __future__ import annotations

import string

from tui.i18n import CATALOG, LANGUAGES, t


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_has_both_languages_with_the_same_placeholders() -> None:
    for key, texts in CATALOG.items():
        assert set(texts) == set(LANGUAGES), key
        assert _fields(texts["de"]) == _fields(texts["en"]), key


def test_lookup_formats() -> None:
    assert t("new_rows", "de", n=3) == "+3 neu"
    assert t("new_rows", "en", n=3) == "+3 new"
