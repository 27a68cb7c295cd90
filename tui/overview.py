"""The overview: per recipient, what it received in the last hour and day, and the gateway.

Counts, fields and the rate sparkline come from the log (``DataSource.overview``), so they are
there when the gateway is not running; broker, upstream links, outbox depth and checkpoint age
come from the running gateway's ``status`` and say "gateway not running" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from gateway.operations.status_model import Status
from gateway.visible import neutralise
from tui.context import ctx, start
from tui.i18n import Lang, relabel, t
from tui.model import Names, Overview

__all__ = ["OverviewScreen", "render_overview", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int]) -> str:
    """One block character per value, scaled to the largest; zero is a space."""
    top = max(values, default=0)
    if top == 0:
        return " " * len(values)
    return "".join(
        " " if v == 0 else _BARS[min(len(_BARS) - 1, (v * len(_BARS) - 1) // top)] for v in values
    )


def _link(ok: bool, lang: Lang) -> Text:
    return Text(t("o_connected" if ok else "o_disconnected", lang), style="green" if ok else "red")


def _gateway(status: Status | None, names: Names, lang: Lang) -> list[RenderableType]:
    out: list[RenderableType] = [Text(t("o_gateway", lang), style="bold underline")]
    if status is None:
        out.append(Text(t("o_not_running", lang), style="yellow"))
        return out
    broker = status.device_broker
    out.append(Text.assemble(f"{t('o_broker', lang)}: ", _link(broker.connected, lang)))
    if broker.error:
        out.append(Text(f"  {neutralise(str(broker.error))}", style="red"))
    age = status.last_checkpoint_age_s
    if age is not None:
        ago = format_decimal(float(age), format="0.0", locale=lang)  # "vor 3,2 s" in German
        out.append(Text(f"{t('o_checkpoint', lang)}: {t('o_seconds_ago', lang, s=ago)}"))
    out.extend(_witnesses(status, lang))
    pipeline = status.pipeline  # None in a customer's view: the counts are of every customer
    if pipeline is not None:
        counts = {k: getattr(pipeline, k) for k in ("received", "shared", "altered", "withheld")}
        out.append(Text(f"{t('o_pipeline', lang)}: " + t("o_pipeline_line", lang, **counts)))
        if pipeline.failing_closed:
            out.append(Text(t("o_fail_closed", lang), style="bold red"))
    clock = status.clock
    if clock.steps_back:
        step = float(clock.largest_step_s or 0.0)
        out.append(Text(t("o_clock_back", lang, n=clock.steps_back, step=step), style="yellow"))
    disk = status.disk
    if disk is not None and disk.text:  # worded once, by the gateway (gateway/operations/disk.py)
        level = disk.level or "ok"
        style = {"warning": "yellow", "critical": "bold red"}.get(level, "")
        mark = "" if level == "ok" else "⚠ "  # colour is doubled by a symbol
        out.append(Text(f"{mark}{t('o_disk', lang)}: {disk.text.get(lang, '')}", style=style))
    for policy in status.policies:
        if policy.error:
            error = neutralise(str(policy.error), lines=True)
            out.append(Text(t("o_policy_error", lang, e=error), style="red"))
    out.append(Text(t("o_upstreams", lang), style="bold"))
    for up in status.upstreams:
        name = up.display_name or names.recipient(up.recipient)
        line = Text.assemble(f"  {name}: ", _link(up.connected, lang))
        line.append(f"  {t('o_outbox', lang)} {up.outbox_depth}")
        out.append(line)
        if up.last_error:
            out.append(Text(f"    {neutralise(str(up.last_error))}", style="red"))
    return out


def _witnesses(status: Status, lang: Lang) -> list[RenderableType]:
    """How far the witnesses' countersignatures are behind, one line each (and refusals)."""
    out: list[RenderableType] = []
    for witness in status.witnesses:
        if witness.entries_behind:
            behind = timedelta(seconds=witness.seconds_behind or 0)
            age = format_timedelta(behind, threshold=2, locale=lang)
            n = format_decimal(witness.entries_behind, locale=lang)
            line = Text(t("o_witness_behind", lang, name=witness.name, n=n, age=age), "yellow")
        elif witness.logs and witness.logs_cosigned == witness.logs:
            line = Text(t("o_witness_ok", lang, name=witness.name), style="green")
        else:
            line = Text(t("o_witness_waiting", lang, name=witness.name), style="yellow")
        out.append(line)
        if witness.reachable is False and witness.last_error:
            out.append(Text(t("o_witness_down", lang, e=neutralise(witness.last_error)), "red"))
        for refusal in witness.refusals:
            text = t(
                "o_witness_refused",
                lang,
                name=witness.name,
                log=neutralise(refusal.log),
                reason=neutralise(refusal.reason),
            )
            out.append(Text(text, style="bold red"))
    return out


def render_overview(overview: Overview, names: Names, lang: Lang) -> RenderableType:
    parts: list[RenderableType] = []
    if not overview.recipients:
        parts.append(Text(t("o_empty", lang), style="italic"))
    for stats in overview.recipients:
        parts.append(Text(names.recipient(stats.recipient), style="bold"))
        hour, day, withheld = (
            format_decimal(n, locale=lang)
            for n in (stats.last_hour, stats.last_day, stats.withheld_day)
        )
        line = Text(f"  {t('o_hour', lang)}: {hour:>6}   {t('o_day', lang)}: {day:>7}   ")
        line.append(f"{t('o_withheld', lang)}: {withheld:>6}", style="red")
        parts.append(line)
        parts.append(Text.assemble(f"  {t('o_rate', lang)} ", (sparkline(stats.buckets), "cyan")))
        sent = neutralise(", ".join(stats.fields_sent)) or t("o_none", lang)
        never = neutralise(", ".join(stats.never_sent)) or t("o_none", lang)
        parts.append(Text(f"  ✓ {t('o_fields', lang)}: {sent}", style="green"))
        parts.append(Text(f"  ✗ {t('o_never', lang)}: {never}", style="red"))
        parts.append(Text(""))
    parts.extend(_gateway(overview.status, names, lang))
    for request in overview.erasure_requests:  # the installer still runs `einblick forget`
        at = datetime.fromtimestamp(request.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        parts.append(
            Text(
                "⚠ "
                + t(
                    "o_erasure_request",
                    lang,
                    customer=neutralise(request.customer),
                    at=at,
                    by=neutralise(request.by),
                ),
                style="bold yellow",
            )
        )
    return Group(*parts)


class OverviewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,o", "app.pop_screen", "k_back"),
        Binding("l", "app.language", "k_lang"),
    ]

    def __init__(self, refresh_s: float = 2.0) -> None:
        super().__init__()
        self.overview: Overview | None = None
        self.refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="overview")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.update_lang()
        start(self, self.reload, group="overview", exclusive=True)
        self.set_interval(self.refresh_s, self._tick, name="refresh overview")

    def _tick(self) -> None:
        start(self, self.reload, group="overview", exclusive=True)

    async def reload(self) -> None:
        app = ctx(self)
        self.overview = await app.source.overview(app.clock())
        self.update_lang()

    def update_lang(self) -> None:
        app = ctx(self)
        relabel(self, app.lang)
        self.title = t("overview_title", app.lang)
        body: RenderableType = Text(t("loading", app.lang))
        if self.overview is not None:
            body = render_overview(self.overview, app.names, app.lang)
        self.body = body
        self.query_one("#overview", Static).update(body)
        self.refresh_bindings()
