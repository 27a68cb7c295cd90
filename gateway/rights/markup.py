"""A document of sections (paragraphs, tables, bullet lists) and its Markdown and HTML.

The customer's report and the records of processing are written as a ``Document`` and rendered
here, so both formats say the same. Every value comes from the log, where names a customer or
installer typed and topics a device chose are kept: in Markdown each markup character is
escaped (the title and headings too), in HTML everything goes through ``html.escape``, and in both control and bidi
characters are made visible (``gateway.visible``). Only our own whole-paragraph ``**bold**``
stays markup.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from gateway.visible import neutralise

__all__ = ["Block", "Document", "Table", "render_html", "render_md"]


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[str]]


Block = str | Table | list[str]  # a paragraph, a table, a bullet list


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: list[tuple[str, list[Block]]]


# Characters that would make device text Markdown (links, images, emphasis, inline HTML, code).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~]|^#)", re.MULTILINE)


def _md_text(text: str, *, lines: bool = False) -> str:
    """Device text in Markdown: visible controls, and every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", neutralise(text, lines=lines))


def _md_cell(text: str) -> str:
    return _md_text(text)


def _md_para(text: str) -> str:
    """A paragraph: our own whole-paragraph ``**bold**`` stays, everything else is escaped."""
    if text.startswith("**") and text.endswith("**") and len(text) > 4:
        return f"**{_md_text(text[2:-2], lines=True)}**"
    return _md_text(text, lines=True)


def render_md(doc: Document) -> str:
    # The title and headings carry device and customer text too (a device's name, a field key):
    # escaped like every other value, on one line (a newline there would end the heading).
    out = [f"# {_md_text(doc.title)}", ""]
    for title, blocks in doc.sections:
        out += [f"## {_md_text(title)}", ""]
        for block in blocks:
            if isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
                out.append("|" + "---|" * len(block.header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, list):
                out += [f"- {_md_text(item)}" for item in block]
            else:
                out.append(_md_para(block))
            out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then turn a whole-paragraph ``**bold**`` into <strong> (our own markup only)."""
    if text.startswith("**") and text.endswith("**") and len(text) > 4:
        return f"<strong>{_html(text[2:-2])}</strong>"
    return _html(text)


def _html(text: str) -> str:
    """Device text in HTML: no tag, no entity, no control or bidi character."""
    return html.escape(neutralise(text, lines=True))


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #bbb;"
    "padding:.25rem .5rem;text-align:left}th{background:#eee}"
)


def render_html(doc: Document, lang: str) -> str:
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(lang)}"><head><meta charset="utf-8">',
        f"<title>{_html(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_html(doc.title)}</h1>",
    ]
    for title, blocks in doc.sections:
        out.append(f"<h2>{_html(title)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                out.append("<table><thead><tr>")
                out += [f"<th>{_html(h)}</th>" for h in block.header]
                out.append("</tr></thead><tbody>")
                for row in block.rows:
                    out.append("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in row) + "</tr>")
                out.append("</tbody></table>")
            elif isinstance(block, list):
                out.append("<ul>" + "".join(f"<li>{_html(i)}</li>" for i in block) + "</ul>")
            else:
                out.append(f"<p>{_inline(block)}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
