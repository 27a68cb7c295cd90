"""Customer-rights texts: lists, counts and dates formatted by Babel for German and English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.locale import join, number, trn, when
from gateway.rights.erasure import ErasureRequest, _texts


@pytest.mark.parametrize(
    ("lang", "items", "expected"),
    [
        ("de", [], ""),
        ("de", ["Netzbetreiber"], "Netzbetreiber"),
        ("de", ["a", "b"], "a und b"),
        ("de", ["a", "b", "c"], "a, b und c"),
        ("en", ["a", "b"], "a and b"),
        ("en", ["a", "b", "c"], "a, b and c"),
    ],
)
def test_lists_read_as_the_language_writes_them(lang: str, items: list[str], expected: str) -> None:
    assert join(lang, items) == expected


@pytest.mark.parametrize(
    ("lang", "n", "expected"),
    [
        ("de", 1, "1 noch nicht versandte Nachricht"),
        ("de", 2, "2 noch nicht versandte Nachrichten"),
        ("de", 0, "0 noch nicht versandte Nachrichten"),
        ("de", 12345, "12.345 noch nicht versandte Nachrichten"),
        ("en", 1, "1 message still waiting to be sent"),
        ("en", 3, "3 messages still waiting to be sent"),
        ("en", 12345, "12,345 messages still waiting to be sent"),
    ],
)
def test_a_count_takes_the_plural_form_of_its_language(lang: str, n: int, expected: str) -> None:
    assert trn(lang, "erasure.what.queued", n) == expected


def test_an_unknown_counted_text_shows_its_key_and_an_unknown_language_english() -> None:
    assert trn("de", "no.such.text", 2) == "no.such.text"
    assert trn("fr", "erasure.what.queued", 1) == "1 message still waiting to be sent"


def test_numbers_carry_the_languages_grouping() -> None:
    assert (number("de", 1234567), number("en", 1234567)) == ("1.234.567", "1,234,567")


@pytest.mark.parametrize(
    ("lang", "moment", "zone", "expected"),
    [
        (
            "de",
            datetime(2026, 12, 3, 14, 30, tzinfo=UTC),
            "Europe/Berlin",
            "03.12.2026 15:30:00 MEZ",
        ),
        (
            "de",
            datetime(2026, 7, 3, 14, 30, tzinfo=UTC),
            "Europe/Berlin",
            "03.07.2026 16:30:00 MESZ",
        ),
        (
            "en",
            datetime(2026, 12, 3, 14, 30, tzinfo=UTC),
            "Europe/Berlin",
            "2026-12-03 15:30:00 CET",
        ),
        ("en", datetime(2026, 12, 3, 14, 30, tzinfo=UTC), "UTC", "2026-12-03 14:30:00 UTC"),
        (
            "de",
            datetime(2026, 12, 3, 14, 30, tzinfo=UTC),
            "Europe/Zurich",
            "03.12.2026 15:30:00 MEZ",
        ),
    ],
)
def test_dates_are_on_the_customers_clock_with_the_zone_named(
    lang: str, moment: datetime, zone: str, expected: str
) -> None:
    assert when(lang, moment, zone) == expected


def test_an_erasure_entry_counts_in_the_singular_and_dates_on_the_customers_clock() -> None:
    request = ErasureRequest(
        "acme", "meter-1", "Anna Weber", datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    )
    texts = _texts(request, 1, 1, 0, ["Netzbetreiber", "Stadtwerke"], timezone="Europe/Berlin")
    assert "am 05.01.2026 10:00:00 MEZ" in texts["de"]
    assert (
        "den gespeicherten Inhalt von 1 Protokolleintrag und 1 noch nicht versandte Nachricht"
        in (texts["de"])
    )
    assert "Netzbetreiber und Stadtwerke" in texts["de"]
    assert "on 2026-01-05 10:00:00 CET" in texts["en"]
    assert "the stored content of 1 log entry and 1 message still waiting to be sent" in texts["en"]
