"""A document's Markdown and HTML: device text never becomes markup, our own bold stays."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from gateway.rights.markup import Document, Table, render_html, render_md

HOSTILE = "<script>alert(1)</script> [x](http://evil) *e* \u202eevil"


def _doc(title: str = f"Report {HOSTILE}") -> Document:
    return Document(
        title,
        [
            (
                "Section",
                [
                    "**Bold heading**",
                    HOSTILE,
                    Table(["Field", "How"], [[HOSTILE, "1 | 2"]]),
                    ["item <b>", "plain"],
                ],
            )
        ],
    )


def test_html_escapes_every_value() -> None:
    page = render_html(_doc(), "de")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert "\u202e" not in page  # bidi override made visible, not applied
    assert "<p><strong>Bold heading</strong></p>" in page
    assert page.startswith("<!DOCTYPE html>") and '<html lang="de">' in page
    assert "<td>1 | 2</td>" in page


def test_markdown_escapes_every_markup_character() -> None:
    # The body's escapes (the title and headings: test_markdown_keeps_injections_...).
    text = render_md(_doc("Report"))
    assert "<script>" not in text and r"\<script\>" in text
    assert r"\[x\](http://evil)" in text and r"\*e\*" in text
    assert "\u202e" not in text
    assert "\n**Bold heading**\n" in text
    assert r"| 1 \| 2 |" in text  # a pipe in a cell cannot open a column
    assert "- item \\<b\\>" in text


# Each place a document puts text: the title, a heading, a paragraph, a list item, a table's
# header and cells. Every one gets the same two injections.
INJECTIONS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def _everywhere(bad: str) -> Document:
    return Document(
        f"title {bad}",
        [
            (
                f"heading {bad}",
                [f"para {bad}", [f"item {bad}"], Table([f"th {bad}"], [[f"td {bad}"]])],
            )
        ],
    )


class _Elements(HTMLParser):
    """The elements and the text a browser would build from a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text += data


def _parsed(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


@pytest.mark.parametrize("bad", INJECTIONS)
def test_html_keeps_injections_as_text_in_every_place(bad: str) -> None:
    page = _parsed(render_html(_everywhere(bad), "en"))
    assert "script" not in page.tags and "img" not in page.tags
    assert all(name in ("lang", "charset") for name, _ in page.attrs)  # no onerror, no src
    for place in ("title", "heading", "para", "item", "th", "td"):
        assert f"{place} {bad}" in page.text, place


@pytest.mark.parametrize("bad", INJECTIONS)
def test_markdown_keeps_injections_as_text_in_every_place(bad: str) -> None:
    # Rendered by a CommonMark renderer that passes raw HTML through (as many viewers do): an
    # unescaped '<script>' anywhere in the Markdown would come out as an element.
    page = _parsed(
        MarkdownIt("commonmark", {"html": True}).enable("table").render(render_md(_everywhere(bad)))
    )
    assert "script" not in page.tags and "img" not in page.tags
    assert page.attrs == []
    for place in ("title", "heading", "para", "item", "th", "td"):
        assert f"{place} {bad}" in page.text, place
    assert page.tags[:2] == ["h1", "h2"]  # the title and heading stay one heading each
