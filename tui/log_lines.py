"""The live log: a Line-API ``ScrollView`` that renders only the rows on screen.

Modelled on toolong's ``LogLines``: the widget's virtual height is the row count of the current
``LogView``, ``render_line`` draws one row from a small window of rows fetched around the
viewport (a worker asks the data source for just those), and rendered strips are kept in an LRU
cache. A timer takes in new entries every ``poll_interval`` seconds. In follow mode (the default)
the cursor and view stay on the newest row; scrolling or moving up pauses it and new rows are
counted ("+N new") until ``End`` resumes. State changes are announced with a ``Changed`` message
that can replace an older one still queued, so a flood of entries costs one status update.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gateway.visible import neutralise
from tui.context import start
from tui.i18n import Lang, relabel, t
from tui.model import Names, Row
from tui.query import Query
from tui.source import LogView

__all__ = ["SYMBOLS", "LogLines", "columns_for", "fit_name"]

SYMBOLS = {"shared": "✓", "altered": "◐", "withheld": "✗", None: "•"}
MARGIN = 40  # rows fetched beyond the viewport on each side
KEEP = 600  # rows kept in memory at most


def columns_for(width: int) -> tuple[int, int, int, int]:
    """Widths of device, recipient, purpose and summary for a row ``width`` cells wide.

    Fixed part: time (8), the decision symbol (1) and five separating spaces.
    """
    rest = max(width - 8 - 1 - 5, 20)
    if width >= 110:
        device, recipient, purpose = 18, 20, 24
    elif width >= 90:
        device, recipient, purpose = 14, 16, 18
    else:
        device, recipient, purpose = 11, 12, 14
    summary = max(rest - device - recipient - purpose, 8)
    return device, recipient, purpose, summary


def _fit(text: str, width: int) -> str:
    text = neutralise(text)  # one row: no newline, no override may reorder the columns
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(width - 1, 0)] + "…"


def _common(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def fit_name(name: str, width: int, others: Iterable[str]) -> str:
    """``name`` in ``width`` cells, still telling it apart from ``others`` (the other names
    the column may show): when cutting its end would hide what differs ("Backofen Filiale
    Nord 1" / "… Nord 2" both "Backofen F…"), keep its start, an ellipsis, and the part from
    where it differs."""
    name = neutralise(name)
    if len(name) <= width:
        return name.ljust(width)
    cut = max(width - 1, 0)
    shared = max(
        (_common(name, other) for other in others if other and other != name),
        default=0,
    )
    if shared < cut or width < 5:
        return name[:cut] + "…"
    head = max(width // 3, 1)
    rest = width - head - 1
    differs = name[shared:]
    if len(differs) <= rest:
        return (name[:head] + "…" + name[len(name) - rest :]).ljust(width)
    return name[:head] + "…" + differs[: rest - 1] + "…"


class LogLines(ScrollView, can_focus=True):
    """Rows of the explanation log; see the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", show=False),
        Binding("down,j", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "top", show=False),
        Binding("end", "follow", "k_follow", show=False),
        Binding("enter", "select", "k_details"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loglines--shared",
        "loglines--altered",
        "loglines--withheld",
        "loglines--event",
        "loglines--time",
        "loglines--cursor",
        "loglines--hit",
        "loglines--placeholder",
    }
    DEFAULT_CSS = """
    LogLines {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    LogLines > .loglines--shared { color: $success; text-style: bold; }
    LogLines > .loglines--altered { color: $warning; text-style: bold; }
    LogLines > .loglines--withheld { color: $error; text-style: bold; }
    LogLines > .loglines--event { color: $accent; }
    LogLines > .loglines--time { color: $text-muted; }
    LogLines > .loglines--cursor { background: $primary 40%; }
    LogLines:focus > .loglines--cursor { background: $primary 70%; }
    LogLines > .loglines--hit { background: $secondary 35%; text-style: underline; }
    LogLines > .loglines--placeholder { color: $text-disabled; }
    """

    follow: reactive[bool] = reactive(True, repaint=False)
    pending: reactive[int] = reactive(0, repaint=False)
    cursor: reactive[int] = reactive(-1, repaint=False)

    class Changed(Message):
        """Follow state, row count or pending count changed; the status bar redraws."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LogLines.Changed)

    class Selected(Message):
        """Enter on a row: show its details."""

        def __init__(self, seq: int) -> None:
            super().__init__()
            self.seq = seq

    def __init__(
        self,
        names: Names,
        *,
        lang: Lang = "de",
        tz: tzinfo | None = None,
        poll_interval: float = 0.25,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.names = names
        self.lang: Lang = lang
        self.tz = tz
        self.poll_interval = poll_interval
        self.view: LogView | None = None
        self.find: Query | None = None
        self._rows: dict[int, Row] = {}
        self._strips: LRUCache[tuple[int, int, int, bool, str, int], Strip] = LRUCache(1024)
        self._generation = 0  # bumped when rows are re-fetched (filter, find, language)
        self._polling = False
        self._loading: tuple[int, int] | None = None
        self._auto_scroll = False
        relabel(self, lang)

    # -- data ---------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return 0 if self.view is None else self.view.count

    def on_mount(self) -> None:
        self.set_interval(self.poll_interval, self._tick, name="poll new entries")

    async def attach(self, view: LogView) -> None:
        """Show ``view`` (after a filter change, or at start), following its newest row."""
        self.view = view
        self._rows.clear()
        self._generation += 1
        self.pending = 0
        self.follow = True
        self._sync_size()
        self.cursor = self.count - 1
        self._scroll_to_end()
        await self._load_visible()
        self.refresh()
        self.post_message(self.Changed())

    async def set_find(self, find: Query | None) -> None:
        self.find = None if find is None or find.empty else find
        self._rows.clear()
        self._generation += 1
        await self._load_visible()
        self.refresh()

    def set_lang(self, lang: Lang) -> None:
        self.lang = lang
        self._strips.clear()
        self.refresh()

    def _tick(self) -> None:
        if self.view is not None and not self._polling:
            self._polling = True
            start(self, self._poll_worker, group="poll", name="poll new entries")

    async def _poll_worker(self) -> None:
        await self.poll_now()

    async def poll_now(self) -> int:
        """Take in new entries now; returns how many rows were added."""
        self._polling = True
        try:
            if self.view is None:
                return 0
            added = await self.view.refresh()
            if added:
                self._sync_size()
                if self.follow:
                    self.cursor = self.count - 1
                    self._scroll_to_end()
                else:
                    self.pending += added
                await self._load_visible()
                self.refresh()
                self.post_message(self.Changed())
            return added
        finally:
            self._polling = False

    def _sync_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.count)

    def _scroll_to_end(self) -> None:
        self._auto_scroll = True
        try:
            self.scroll_to(
                y=max(self.count - self.scrollable_content_region.height, 0),
                animate=False,
                immediate=True,
            )
        finally:
            self._auto_scroll = False

    def _wanted(self) -> tuple[int, int]:
        top = round(self.scroll_y)
        start = max(top - MARGIN, 0)
        end = min(top + self.scrollable_content_region.height + MARGIN, self.count)
        return start, end

    async def _load_visible(self) -> None:
        if self.view is None:
            return
        start, end = self._wanted()
        missing = [i for i in range(start, end) if i not in self._rows]
        if not missing:
            return
        first, last = missing[0], missing[-1] + 1
        generation = self._generation
        rows = await self.view.rows(first, last - first, self.find)
        if generation != self._generation:
            return
        for offset, row in enumerate(rows):
            self._rows[first + offset] = row
        if len(self._rows) > KEEP:
            for index in [i for i in self._rows if i < start or i >= end]:
                del self._rows[index]
        self.refresh()

    def _request_rows(self) -> None:
        wanted = self._wanted()
        if self._loading == wanted:
            return
        self._loading = wanted
        start(self, self._load_worker, group="rows", exclusive=True, name="load rows")

    async def _load_worker(self) -> None:
        try:
            await self._load_visible()
        finally:
            self._loading = None

    def row_at(self, index: int) -> Row | None:
        return self._rows.get(index)

    # -- scrolling and follow ----------------------------------------------------------
    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._auto_scroll and new_value < old_value and self.follow:
            self.follow = False
        if round(old_value) != round(new_value):
            self._request_rows()

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.pending = 0
            self.cursor = self.count - 1
            self._scroll_to_end()
        self.post_message(self.Changed())

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._strips.clear()
        self._sync_size()
        if self.follow:
            self._scroll_to_end()
        self._request_rows()

    def action_cursor(self, delta: int) -> None:
        if self.count == 0:
            return
        if delta < 0:
            self.follow = False
        self.cursor = max(0, min(self.count - 1, self.cursor + delta))
        self._show_cursor()

    def action_page(self, delta: int) -> None:
        self.action_cursor(delta * max(self.scrollable_content_region.height - 1, 1))

    def action_top(self) -> None:
        self.follow = False
        self.cursor = 0
        self._show_cursor()

    def action_follow(self) -> None:
        if self.follow:
            self.watch_follow(True)
        self.follow = True

    def action_select(self) -> None:
        row = self._rows.get(self.cursor)
        if row is not None:
            self.post_message(self.Selected(row.seq))

    def move_to(self, index: int) -> None:
        """Put the cursor on row ``index`` (a find or jump result), pausing follow."""
        self.follow = False
        self.cursor = max(0, min(self.count - 1, index))
        self._show_cursor(center=True)

    def _show_cursor(self, center: bool = False) -> None:
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        if center and not top <= self.cursor < top + height:
            self.scroll_to(y=max(self.cursor - height // 2, 0), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self._request_rows()
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        index = round(self.scroll_y) + event.y
        if 0 <= index < self.count:
            if index != self.count - 1:
                self.follow = False
            self.cursor = index
            if event.chain == 2:
                self.action_select()

    # -- rendering -----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if index >= self.count:
            return Strip.blank(width, self.rich_style)
        row = self._rows.get(index)
        if row is None:
            self.call_later(self._request_rows)
            style = self.rich_style + self.get_component_rich_style("loglines--placeholder")
            return Strip([Segment(_fit(t("loading", self.lang), width), style)], width)
        key = (index, row.seq, width, index == self.cursor, self.lang, self._generation)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(row, width, index == self.cursor)
            self._strips[key] = strip
        return strip

    def _render_row(self, row: Row, width: int, is_cursor: bool) -> Strip:
        lang = self.lang
        base = self.rich_style
        if row.hit:
            base += self.get_component_rich_style("loglines--hit")
        if is_cursor:
            base += self.get_component_rich_style("loglines--cursor")
        outcome = row.outcome if row.outcome in SYMBOLS else None
        mark = self.get_component_rich_style(
            f"loglines--{outcome}" if outcome else "loglines--event"
        )
        time_style = self.get_component_rich_style("loglines--time")
        when = datetime.fromtimestamp(row.at_us / 1_000_000, UTC).astimezone(self.tz)
        device_w, recipient_w, purpose_w, summary_w = columns_for(width)
        purpose = row.purpose.get(lang) or (t(outcome, lang) if outcome else row.kind)
        recipient = self.names.recipient(row.recipient) or t("nobody", lang)
        segments = [
            Segment(when.strftime("%H:%M:%S"), base + time_style),
            Segment(" ", base),
            Segment(SYMBOLS[outcome], base + mark),
            Segment(" ", base),
            Segment(
                fit_name(self.names.device(row.device), device_w, self.names.devices.values()),
                base,
            ),
            Segment(" ", base),
            Segment(_fit(recipient, recipient_w), base),
            Segment(" ", base),
            Segment(_fit(purpose, purpose_w), base + Style(italic=True)),
            Segment(" ", base),
            Segment(_fit(row.summary.get(lang, ""), summary_w), base),
        ]
        return Strip(segments).adjust_cell_length(width, base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
