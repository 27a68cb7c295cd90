"""The Einblick TUI: the live log, details, overview, who gets what, in German or English.

Layout at 80x24: header, column titles, the live log (``LogLines``), a status bar (FOLLOW or
PAUSED, "+N new", row count, filter and find, customer, language), an input line that appears for
filter and find, and the footer with clickable keys. ``ctrl+p`` opens the command palette with
the same actions; ``?`` explains the keys.

Filter and find are separate: a filter hides what does not match (a new ``LogView`` from the
data source), find only highlights matches and ``n``/``N`` jump between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import ClassVar

from babel.numbers import format_decimal
from rich.markup import escape
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from gateway.visible import neutralise
from tui.context import start
from tui.details import DetailsScreen
from tui.grants import GrantsScreen
from tui.help import HelpScreen
from tui.i18n import Lang, relabel, t
from tui.log_lines import LogLines, columns_for
from tui.model import Names
from tui.overview import OverviewScreen
from tui.query import WITHHELD, Query, QueryError, parse_query
from tui.source import DataSource, SourceError

WIDE_FOOTER = 100  # columns from which the footer has room for the palette's key too

__all__ = ["EinblickApp"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EinblickCommands(Provider):
    """The app's actions in the command palette, named in the current language."""

    def _commands(self) -> list[tuple[str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, EinblickApp)
        lang = app.lang
        return [
            (t("c_overview", lang), app.action_overview),
            (t("c_grants", lang), app.action_grants),
            (t("c_lang", lang), app.action_language),
            (t("c_follow", lang), app.action_follow),
            (t("c_withheld", lang), partial(app.apply_filter, "decision:withheld")),
            (t("c_clear", lang), app.action_clear),
            (t("c_help", lang), app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, callback in self._commands():
            yield DiscoveryHit(name, callback)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback)


class EinblickApp(App[int]):
    """The TUI over one ``DataSource``."""

    CSS_PATH = "einblick.tcss"
    TITLE = "Einblick"
    COMMANDS = App.COMMANDS | {EinblickCommands}
    # Help first: at 80 columns the footer cannot show every key, and "?" must stay on screen
    # (the footer lists the app's keys in this order, after the focused log's "enter").
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "k_help"),
        Binding("f", "filter", "k_filter"),
        Binding("slash", "find", "k_find"),
        Binding("n", "find_next", "k_next", show=False),
        Binding("N", "find_prev", "k_prev", show=False),
        Binding("w", "withheld(1)", "k_withheld_next"),
        Binding("W", "withheld(0)", "k_withheld_prev", show=False),
        Binding("end", "follow", "k_follow", show=False),
        Binding("o", "overview", "k_overview"),
        Binding("g", "grants", "k_grants"),
        Binding("l", "language", "k_lang"),
        Binding("q", "quit", "k_quit", show=False),
    ]

    def __init__(
        self,
        source: DataSource,
        *,
        lang: Lang | None = None,
        clock: Callable[[], datetime] = _utcnow,
        tz: tzinfo | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        super().__init__()
        self.source = source
        self.lang: Lang = lang or "de"
        self.lang_given = lang is not None
        self.clock = clock
        self.tz = tz
        self.poll_interval = poll_interval
        self.filter = Query()
        self.find: Query | None = None
        self.find_count = 0
        self._input_mode: str | None = None
        self.ready = False
        relabel(self, self.lang)

    @property
    def names(self) -> Names:
        return self.source.names

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="◐")
        yield Static(id="columns")
        yield LogLines(
            self.source.names,
            lang=self.lang,
            tz=self.tz,
            poll_interval=self.poll_interval,
            id="log",
        )
        yield Static(id="status")
        yield Input(id="query")
        yield Footer(compact=True)

    @property
    def log_lines(self) -> LogLines:
        return self.query_one("#log", LogLines)

    async def on_mount(self) -> None:
        self.query_one("#query", Input).display = False
        self._update_texts()
        self.log_lines.focus()
        start(self, self._start, group="start", name="open the log")

    async def _start(self) -> None:
        try:
            await self.source.open()
        except SourceError as exc:
            self.exit(1, message=str(exc))
            return
        self.log_lines.names = self.source.names
        if not self.lang_given and self.source.customer is not None:
            policies, _ = await self.source.policies()
            for policy in policies:
                if policy.customer == self.source.customer and policy.language in ("de", "en"):
                    self.set_lang("de" if policy.language == "de" else "en")
        await self.log_lines.attach(await self.source.view(self.filter))
        self.ready = True
        self._update_texts()

    async def on_unmount(self) -> None:
        await self.source.close()

    def _update_texts(self) -> None:
        lang = self.lang
        customer = self.source.customer
        self.sub_title = (
            t("customer_view", lang, c=self.names.customer(customer))
            if customer
            else t("all_customers", lang)
        )
        width = self.log_lines.scrollable_content_region.width or self.size.width
        device_w, recipient_w, purpose_w, _ = columns_for(width)
        heads = [
            (t("col_time", lang), 8),
            ("", 1),
            (t("col_device", lang), device_w),
            (t("col_recipient", lang), recipient_w),
            (t("col_purpose", lang), purpose_w),
            (t("col_summary", lang), 0),
        ]
        self.query_one("#columns", Static).update(
            " ".join(name.ljust(w)[:w] if w else name for name, w in heads)
        )
        self._update_status()

    def _update_status(self) -> None:
        lang = self.lang
        log = self.log_lines
        parts = []
        if log.follow:
            parts.append(f"[reverse] {t('follow', lang)} [/]")
        else:
            parts.append(f"[reverse $warning] {t('paused', lang)} [/]")
            if log.pending:
                parts.append(f"[bold $warning]{t('new_rows', lang, n=log.pending)}[/]")
        parts.append(t("rows", lang, n=format_decimal(log.count, locale=lang)))  # 1.234 in German
        # The status bar is markup: what the user typed is escaped into it.
        if not self.filter.empty:
            parts.append(t("filtered", lang, q=escape(neutralise(self.filter.text))))
        if self.find is not None:
            parts.append(
                t("finding", lang, q=escape(neutralise(self.find.text)), n=self.find_count)
            )
        parts.append(lang.upper())
        self.query_one("#status", Static).update(" │ ".join(parts))

    def on_resize(self) -> None:
        # Narrower than 100 columns the palette's "^p" key is drawn over the last keys of the
        # footer (it covered "? Hilfe" at 80); ctrl+p still works and the help screen lists it.
        for footer in self.query(Footer):
            footer.show_command_palette = self.size.width >= WIDE_FOOTER
        self._update_texts()

    @on(LogLines.Changed)
    def _log_changed(self) -> None:
        self._update_status()

    # -- language -------------------------------------------------------------------------
    def set_lang(self, lang: Lang) -> None:
        self.lang = lang
        relabel(self, lang)
        self.log_lines.set_lang(lang)
        relabel(self.log_lines, lang)
        for screen in self.screen_stack:
            update = getattr(screen, "update_lang", None)
            if update is not None:
                update()
        self._update_texts()
        self.refresh_bindings()

    def action_language(self) -> None:
        self.set_lang("en" if self.lang == "de" else "de")

    # -- filter and find ------------------------------------------------------------------
    def _ask(self, mode: str, prompt: str, value: str) -> None:
        box = self.query_one("#query", Input)
        self._input_mode = mode
        box.placeholder = prompt
        box.value = value
        box.display = True
        box.focus()

    def action_filter(self) -> None:
        self._ask("filter", t("filter_prompt", self.lang), self.filter.text)

    def action_find(self) -> None:
        self._ask("find", t("find_prompt", self.lang), "" if self.find is None else self.find.text)

    @on(Input.Submitted, "#query")
    def _submitted(self, event: Input.Submitted) -> None:
        mode = self._input_mode
        self._close_input()
        if mode == "filter":
            self.apply_filter(event.value)
        elif mode == "find":
            self.apply_find(event.value)

    def _close_input(self) -> None:
        box = self.query_one("#query", Input)
        box.display = False
        self._input_mode = None
        self.log_lines.focus()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", None)
        if key == "escape" and self._input_mode is not None:
            self._close_input()

    def apply_filter(self, text: str) -> None:
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.notify(t("bad_query", self.lang, e=exc), severity="error")
            return
        self.filter = query
        start(self, partial(self._refilter, query), group="filter", exclusive=True, name="filter")

    async def _refilter(self, query: Query) -> None:
        view = await self.source.view(query)
        await self.log_lines.attach(view)
        if self.find is not None:
            self.find_count = await view.matches(self.find)
        self._update_status()

    def apply_find(self, text: str) -> None:
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.notify(t("bad_query", self.lang, e=exc), severity="error")
            return
        self.find = None if query.empty else query
        start(self, self._refind, group="find", exclusive=True, name="find")

    async def _refind(self) -> None:
        log = self.log_lines
        await log.set_find(self.find)
        if self.find is not None and log.view is not None:
            self.find_count = await log.view.matches(self.find)
            await self._jump(self.find, forward=False, from_end=log.follow)
        self._update_status()

    async def _jump(self, query: Query, forward: bool, from_end: bool = False) -> bool:
        log = self.log_lines
        if log.view is None:
            return False
        position = None if from_end else log.cursor
        found = await log.view.locate(query, position, forward)
        if found is None:
            return False
        log.move_to(found)
        return True

    async def _jump_or_say(self, query: Query, forward: bool, missing: str) -> None:
        if not await self._jump(query, forward):
            self.notify(t(missing, self.lang))

    def action_find_next(self) -> None:
        if self.find is not None:
            start(self, partial(self._jump_or_say, self.find, True, "no_match"), group="jump")

    def action_find_prev(self) -> None:
        if self.find is not None:
            start(self, partial(self._jump_or_say, self.find, False, "no_match"), group="jump")

    def action_withheld(self, forward: int) -> None:
        start(
            self, partial(self._jump_or_say, WITHHELD, bool(forward), "no_withheld"), group="jump"
        )

    def action_follow(self) -> None:
        self.log_lines.action_follow()

    def action_clear(self) -> None:
        self.find = None
        start(self, self._refind, group="find", exclusive=True)
        self.apply_filter("")

    # -- screens --------------------------------------------------------------------------
    @on(LogLines.Selected)
    def _selected(self, event: LogLines.Selected) -> None:
        start(self, partial(self._open_details, event.seq), group="details", exclusive=True)

    async def _open_details(self, seq: int) -> None:
        detail = await self.source.detail(seq)
        await self.push_screen(DetailsScreen(detail, seq))

    def action_overview(self) -> None:
        self.push_screen(OverviewScreen())

    def action_grants(self) -> None:
        self.push_screen(GrantsScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    _MAIN_ONLY = frozenset(
        {"filter", "find", "find_next", "find_prev", "withheld", "follow", "overview", "grants"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Log actions only on the log screen (a details screen has its own keys)."""
        return not (action in self._MAIN_ONLY and len(self.screen_stack) > 1)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title.lower() not in {"keys", "maximize", "minimize"}:
                yield command
