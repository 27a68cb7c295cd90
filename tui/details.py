"""The details of one entry: the explanation, what left the box, and the proof.

Everything comes from ``DataSource.detail``; this screen only lays it out in the current
language. The payload is shown byte for byte as it was published (pretty-printed only when it
is JSON, with the raw bytes' length given), or says that it was erased or that nothing was sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import ClassVar

import orjson
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from gateway.visible import neutralise
from tui.context import ctx, start
from tui.i18n import Lang, relabel, t
from tui.log_lines import SYMBOLS
from tui.model import Detail, Names

__all__ = ["DetailsScreen", "render_detail"]


def _time(at_us: int, tz: tzinfo | None) -> str:
    return (
        datetime.fromtimestamp(at_us / 1_000_000, UTC)
        .astimezone(tz)
        .strftime("%Y-%m-%d %H:%M:%S %Z")
    )


def _payload(detail: Detail, lang: Lang) -> RenderableType:
    if detail.erased:
        return Text(t("d_erased", lang), style="italic")
    if detail.content is None:
        return Text(t("d_no_payload", lang), style="italic")
    try:
        parsed = orjson.loads(detail.content)
    except orjson.JSONDecodeError:
        return Text(neutralise(detail.content.decode("utf-8", errors="backslashreplace")))
    # JSON escapes control characters but not bidi overrides: neutralise the pretty form too.
    pretty = orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()
    raw = neutralise(detail.content.decode("utf-8", "backslashreplace"))
    return Group(
        Text(neutralise(pretty, lines=True)),
        Text(f"{len(detail.content)} bytes: {raw}", style="dim"),
    )


def _plain(text: str) -> Text:
    """Text from the log (names, keys, reasons chosen by devices or policy authors): never
    markup, and no character that reorders or hides what is around it."""
    return Text(neutralise(text))


def render_detail(detail: Detail, names: Names, lang: Lang, tz: tzinfo | None) -> RenderableType:
    row = detail.row
    outcome = row.outcome
    style = {"shared": "green", "altered": "yellow", "withheld": "red"}.get(outcome or "", "cyan")
    decision = Text(
        f"{SYMBOLS.get(outcome, '•')} {t(outcome, lang) if outcome else row.kind}",
        style=f"bold {style}",
    )

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row(t("d_when", lang), _time(row.at_us, tz))
    facts.add_row(t("d_decision", lang), decision)
    facts.add_row(t("d_customer", lang), _plain(names.customer(row.customer) or "—"))
    facts.add_row(
        t("d_device", lang),
        _plain(f"{names.device(row.device)} ({row.device})" if row.device else "—"),
    )
    facts.add_row(
        t("d_recipient", lang),
        _plain(f"{names.recipient(row.recipient)} ({row.recipient})" if row.recipient else "—"),
    )
    if row.purpose:
        facts.add_row(t("d_purpose", lang), _plain(row.purpose.get(lang, "")))
    if detail.legal_basis:
        facts.add_row(t("d_basis", lang), _plain(t(f"lb_{detail.legal_basis}", lang)))
    facts.add_row(t("d_grant", lang), _plain(detail.grant or "—"))
    facts.add_row(t("d_policy", lang), _plain(detail.policy_version or "—"))

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    fields.add_row(
        Text(f"✓ {t('d_shared', lang)}", style="green"), _plain(", ".join(detail.shared) or "—")
    )
    altered = [f"{p} ({tr}{' ' + d if d else ''})" for p, tr, d in detail.altered]
    fields.add_row(
        Text(f"◐ {t('d_altered', lang)}", style="yellow"), _plain(", ".join(altered) or "—")
    )
    fields.add_row(
        Text(f"✗ {t('d_withheld', lang)}", style="red"), _plain(", ".join(detail.withheld) or "—")
    )
    if detail.reason:
        params = ", ".join(f"{k}={v}" for k, v in detail.reason_params.items())
        fields.add_row(
            t("d_reason", lang), _plain(detail.reason + (f" ({params})" if params else ""))
        )

    proof = Table.grid(padding=(0, 2))
    proof.add_column(style="bold", no_wrap=True)
    proof.add_column()
    proof.add_row(t("d_chain", lang), _plain(f"{detail.chain} #{detail.index}"))
    proof.add_row(t("d_hash", lang), detail.entry_hash.hex())
    proof.add_row(
        t("d_link", lang),
        Text(t("d_link_ok", lang), style="green")
        if detail.link_valid
        else Text(t("d_link_bad", lang), style="red"),
    )
    cp = detail.checkpoint
    if cp is None:
        proof.add_row(t("d_checkpoint", lang), Text(t("d_checkpoint_none", lang), style="yellow"))
    elif cp.signature_valid and cp.head_matches:
        proof.add_row(
            t("d_checkpoint", lang),
            Text(t("d_checkpoint_ok", lang, size=cp.size, at=_time(cp.at_us, tz)), style="green"),
        )
    else:
        proof.add_row(t("d_checkpoint", lang), Text(t("d_checkpoint_bad", lang), style="red"))
    proof.add_row(
        t("d_key", lang), _plain((cp.key_fingerprint if cp else detail.key_fingerprint) or "—")
    )

    topic = (
        Text(f"{t('d_topic', lang)}: {neutralise(detail.topic)}", style="dim")
        if detail.topic
        else Text("")
    )
    return Group(
        Text(t("d_explanation", lang), style="bold underline"),
        Text(neutralise(detail.texts.get(lang, ""), lines=True)),
        Text(""),
        facts,
        Text(""),
        Text(t("d_fields", lang), style="bold underline"),
        fields,
        Text(""),
        Text(t("d_payload", lang), style="bold underline"),
        topic,
        _payload(detail, lang),
        Text(""),
        Text(t("d_proof", lang), style="bold underline"),
        proof,
    )


class DetailsScreen(Screen[None]):
    """Enter on a row opens this; Escape goes back to the log."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "k_back"),
        Binding("l", "app.language", "k_lang"),
    ]

    def __init__(self, detail: Detail | None, seq: int, *, recheck_s: float = 1.0) -> None:
        super().__init__()
        self.detail = detail
        self.seq = seq
        self.recheck_s = recheck_s
        self._recheck: Timer | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-body"):
            yield Static(id="details")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.update_lang()
        if self.detail is not None and self.detail.checkpoint is None:
            # "Not yet covered by a signed checkpoint" is true only until the next checkpoint
            # (about a second): look again until it is covered, then stop looking.
            self._recheck = self.set_interval(self.recheck_s, self._tick, name="recheck proof")

    def _tick(self) -> None:
        start(self, self._reload, group="recheck", exclusive=True, name="recheck proof")

    async def _reload(self) -> None:
        detail = await ctx(self).source.detail(self.seq)
        if detail is None or detail.checkpoint is None:
            return
        self.detail = detail
        if self._recheck is not None:
            self._recheck.stop()
            self._recheck = None
        self.update_lang()

    def update_lang(self) -> None:
        app = ctx(self)
        lang = app.lang
        relabel(self, lang)
        self.title = t("details_title", lang, seq=self.seq)
        body: RenderableType
        if self.detail is None:
            body = Text(t("d_missing", lang, seq=self.seq))
        else:
            body = render_detail(self.detail, app.names, lang, app.tz)
        self.body = body
        self.query_one("#details", Static).update(body)
        self.refresh_bindings()
