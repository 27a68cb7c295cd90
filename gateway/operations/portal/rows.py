"""A log row as the customer's pages and live streams show it, rendered once.

``row_view`` is what the row template is given (every value a device or a policy author chose is
made visible by ``neutralise`` and escaped by the template). ``RowCache`` keeps each row's HTML,
and its Server-Sent Event, by (customer, seq, language, find, names version): a customer's twenty
streams and their log pages render a row once, not once per session. The customer is in the
key, so a row is never served to another customer; the names' version is too, so a device
renamed in its policy shows its new name on rows rendered after the change.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import jinja2
import orjson

from gateway.log.results import EntryRow
from gateway.operations.portal.names import DisplayNames
from gateway.operations.portal.texts import t
from gateway.visible import neutralise

__all__ = ["SYMBOLS", "RowCache", "RowView", "row_view", "when"]

SYMBOLS = {"shared": "✓", "altered": "◐", "withheld": "✗"}
KEPT = 4096  # rows kept rendered: a page and a few screenfuls of live rows per language


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class RowView:
    """One log row as the row and entry templates read it (``row.device``, ``row.hit``): every
    text a device or a policy author chose already made visible, the template escapes it."""

    seq: int
    when: str  # UTC, to the second
    device: str  # the device's display name, "—" for none
    device_id: str
    recipient: str  # the recipient's display name, "—" for none
    outcome: str  # shared, altered, withheld; "event" for a log event (the CSS class)
    symbol: str  # ✓ ◐ ✗, • for an event: colour is never the only sign
    decision: str  # the outcome in the page's language
    text: str  # the explanation in the page's language
    hit: bool  # the page's find matched the explanation


def row_view(
    row: EntryRow, lang: str, find: str | None, names: DisplayNames | None = None
) -> RowView:
    names = names or DisplayNames()
    text = row.text_de if lang == "de" else row.text_en
    outcome = row.outcome
    return RowView(
        seq=row.seq,
        when=when(row.at),
        device=neutralise(names.device(row.device) or "—"),
        device_id=neutralise(row.device or ""),
        recipient=neutralise(names.recipient(row.recipient) or "—"),
        outcome=outcome or "event",
        symbol=SYMBOLS.get(outcome or "", "•"),
        decision=t(lang, outcome) if outcome else t(lang, "event"),
        text=neutralise(text, lines=True),
        hit=find is not None and find != "" and find.casefold() in text.casefold(),
    )


class RowCache:
    """Rendered rows (HTML, SSE event, whether ``find`` hit), bounded, oldest evicted first."""

    def __init__(self, template: jinja2.Template, kept: int = KEPT) -> None:
        self.template = template
        self.kept = kept
        self.renders = 0  # rows rendered so far (what the tests count)
        self._rows: OrderedDict[tuple[str, int, str, str | None, int], tuple[str, bytes, bool]]
        self._rows = OrderedDict()

    def _get(
        self, customer: str, row: EntryRow, lang: str, find: str | None, names: DisplayNames
    ) -> tuple[str, bytes, bool]:
        key = (customer, row.seq, lang, find, names.version)
        found = self._rows.get(key)
        if found is None:
            view = row_view(row, lang, find, names)
            html = self.template.render(row=view, t=None)
            data = orjson.dumps({"seq": row.seq, "html": html}).decode()
            found = self._rows[key] = (
                html,
                f"event: entry\ndata: {data}\n\n".encode(),
                view.hit,
            )
            self.renders += 1
            while len(self._rows) > self.kept:
                self._rows.popitem(last=False)
        return found

    def html(
        self, customer: str, row: EntryRow, lang: str, find: str | None, names: DisplayNames
    ) -> tuple[str, bool]:
        """The row's ``<tr>`` and whether ``find`` hit it."""
        html, _, hit = self._get(customer, row, lang, find, names)
        return html, hit

    def event(
        self, customer: str, row: EntryRow, lang: str, find: str | None, names: DisplayNames
    ) -> bytes:
        """The row as one Server-Sent Event (``entry``: its seq and its ``<tr>``)."""
        return self._get(customer, row, lang, find, names)[1]
