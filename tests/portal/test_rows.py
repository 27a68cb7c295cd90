"""A log row rendered once for all of a customer's streams and pages: by customer, language,
find and names version; escaped; bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.log.results import EntryRow
from gateway.operations.portal.names import DisplayNames
from gateway.operations.portal.rows import RowCache, row_view
from gateway.operations.portal.server import templates

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"


def _row(seq: int, device: str = "oven-1", text: str = "Temperatur geteilt") -> EntryRow:
    return EntryRow(
        seq=seq,
        at=datetime(2026, 12, 3, 19, 0, tzinfo=UTC),
        customer=C,
        index=seq,
        device=device,
        recipient="wartung-gmbh",
        kind="decision",
        outcome="withheld",
        text_de=text,
        text_en="temperature shared",
    )


def _cache(kept: int = 100) -> RowCache:
    return RowCache(templates().get_template("row.html"), kept)


def test_a_row_is_rendered_once_for_every_stream_and_page_of_its_customer() -> None:
    cache, names = _cache(), DisplayNames({"oven-1": "Ofen"})
    html, hit = cache.html(C, _row(7), "de", None, names)
    for _ in range(20):
        assert cache.html(C, _row(7), "de", None, names) == (html, hit)
        assert b'"seq":7' in cache.event(C, _row(7), "de", None, names)
    assert cache.renders == 1
    assert 'data-seq="7"' in html and "Ofen" in html and "✗" in html and not hit


def test_another_customer_language_find_or_names_render_again() -> None:
    cache, names = _cache(), DisplayNames({"oven-1": "Ofen"})
    cache.html(C, _row(7), "de", None, names)
    cache.html(OTHER, _row(7), "de", None, DisplayNames())
    english, _ = cache.html(C, _row(7), "en", None, names)
    _, hit = cache.html(C, _row(7), "de", "temperatur", names)
    renamed, _ = cache.html(C, _row(7), "de", None, DisplayNames({"oven-1": "Backofen"}, version=1))
    assert cache.renders == 5
    assert "temperature shared" in english and hit and "Backofen" in renamed


def test_a_device_chosen_name_is_text() -> None:
    bad = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    html, _ = _cache().html(C, _row(7, device=bad, text=bad), "de", None, DisplayNames())
    assert "<img" not in html and "<script>" not in html
    assert "&lt;script&gt;" in html and "&#34;&gt;&lt;img" in html


def test_the_cache_is_bounded_oldest_first() -> None:
    cache, names = _cache(kept=3), DisplayNames()
    for seq in range(5):
        cache.html(C, _row(seq), "de", None, names)
    cache.html(C, _row(4), "de", None, names)  # kept
    assert cache.renders == 5
    cache.html(C, _row(0), "de", None, names)  # evicted: rendered again
    assert cache.renders == 6


def test_the_view_shows_the_display_name_and_keeps_the_id() -> None:
    view = row_view(_row(7), "en", "TEMPERATURE", DisplayNames({"oven-1": "Ofen"}))
    assert (view.device, view.device_id, view.hit) == ("Ofen", "oven-1", True)
