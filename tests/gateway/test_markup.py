"""A document's Markdown and HTML: device text never becomes markup, our own bold stays."""

from __future__ import annotations

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
    # The title is not escaped in Markdown (it is in HTML): only the body is device text here.
    text = render_md(_doc("Report"))
    assert "<script>" not in text and r"\<script\>" in text
    assert r"\[x\](http://evil)" in text and r"\*e\*" in text
    assert "\u202e" not in text
    assert "\n**Bold heading**\n" in text
    assert r"| 1 \| 2 |" in text  # a pipe in a cell cannot open a column
    assert "- item \\<b\\>" in text
