"""The report in words: German and English from the same data, CLDR plurals, the time zone."""

from __future__ import annotations

from typing import Any

from gateway.operations.portal.texts import t
from gateway.rights.markup import Table
from gateway.rights.report_text import document


def _data(entries: int) -> dict[str, Any]:
    return {
        "customer": "acme",
        "name": "Bäckerei Schmidt",
        "gateway": "einblick-1",
        "timezone": "Europe/Berlin",
        "generated_at": "2026-06-03T09:30:00+00:00",
        "period": {"first": "2026-06-03T08:00:00+00:00", "last": "2026-06-03T09:00:00+00:00"},
        "verification": {
            "ok": True,
            "entries": entries,
            "checkpoints": 1,
            "keys": ["k1"],
            "unsigned": 0,
            "pinned": True,
            "problem": None,
            "key_problems": [],
        },
        "devices": [{"id": "oven-1", "name": "Ofen 1", "shared": 2, "altered": 1, "withheld": 4}],
        "recipients": [],
        "never_shared": [{"device": "oven-1", "nothing_left": True, "fields": []}],
        "withheld": [],
        "consents": [],
        "erasures": [],
    }


def _text(doc: Any) -> str:
    return "\n".join(str(b) for _, blocks in doc.sections for b in blocks)


def test_one_entry_is_not_all_one_entries() -> None:
    assert "Der eine Eintrag" in _text(document(_data(1), "de"))
    assert "Alle 1.234 Einträge" in _text(document(_data(1234), "de"))
    assert "all 1,234 entries" in _text(document(_data(1234), "en"))


def test_devices_table_and_times_in_the_customer_zone() -> None:
    doc = document(_data(3), "de")
    assert doc.title.endswith("Bäckerei Schmidt")
    tables = [b for _, blocks in doc.sections for b in blocks if isinstance(b, Table)]
    assert tables[0].rows == [["Ofen 1", "oven-1", "3", "4"]]
    assert "03.06.2026 11:30" in _text(doc)  # 09:30 UTC is 11:30 in Berlin in June
    assert "Ofen 1" in _text(document(_data(3), "en"))


def test_the_portal_report_points_to_the_portal_s_pages_not_to_commands_on_the_box() -> None:
    """A customer reading the report in the portal cannot run ``einblick`` on the box; the
    report read there must say where to act instead, in both languages."""
    for lang, pages in (
        ("de", ("„Herunterladen & prüfen“", "„Wer bekommt was“", "„Löschung“")),
        ("en", ("“Download & verify”", "“Who gets what”", "“Erasure”")),
    ):
        box = _text(document(_data(3), lang))
        portal = _text(document(_data(3), lang, portal=True))
        assert "einblick export" in box and "einblick forget" in box  # the installer's copy
        for command in ("einblick export", "einblick forget", "consent withdraw"):
            assert command not in portal, (lang, command)
        assert all(page in portal for page in pages), lang
        # The names are the portal's own navigation labels: one word for one page.
        for key in ("nav_download", "nav_grants", "nav_erasure"):
            assert any(t(lang, key) in page for page in pages), (lang, key)
        assert "einblick verify" in portal and "--since" in portal
