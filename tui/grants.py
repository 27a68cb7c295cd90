"""Who gets what: each customer's policy in plain words, grant by grant, and withdrawal.

Live from the running gateway's ``policies`` op (grants show whether a consent was withdrawn);
when the gateway is not running, read-only from the policy files. Withdrawing asks first, saying
what will stop, then sends the ``withdraw`` op; the gateway applies it to the next message and
to anything still queued, and records it as a signed log entry whose number is shown.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from gateway.visible import neutralise
from tui.context import ctx, start
from tui.i18n import Lang, relabel, t
from tui.model import CustomerPolicy, GrantView, Names
from tui.rights import ReceiptScreen, RightRequest, RightScreen, choices
from tui.source import SourceError

__all__ = ["GrantsScreen", "grant_text"]


def _fields(grant: GrantView, lang: Lang) -> str:
    """What the grant sends, in the words of ``policy describe`` (policies.describe.what_is_sent):
    a view's own summary of a field list once called an aggregate "all fields unchanged"."""
    sends = grant.sends.get(lang) or grant.sends.get("de")
    return " ".join(sends) if sends else ", ".join(grant.fields)


def _devices(grant: GrantView, names: Names) -> str:
    return ", ".join("*" if d == "*" else names.device(d) for d in grant.devices) or "*"


def grant_text(grant: GrantView, names: Names, lang: Lang) -> Text:
    """A grant in plain words, a few short lines."""
    purpose = grant.purpose.get(lang) or grant.purpose.get("de") or grant.id
    text = Text()
    # A grant held back (consent withdrawn, objection, restriction) or not in force by its own
    # dates sends nothing now: its heading must not say the recipient "gets" anything, only what
    # it allows once it applies (the engine withholds every message under it meanwhile).
    off = grant.withdrawn or grant.lapsed is not None
    text.append("✗ " if off else "✓ ", style="red" if off else "green")
    heading = "g_grant_held" if off else "g_grant"
    text.append(t(heading, lang, recipient=grant.recipient_name, purpose=purpose), style="bold")
    if off:
        # "validity_expired" -> "g_would_allow_expired": it no longer applies, or not yet
        lapsed = (grant.lapsed or "").partition("_")[2]
        would = "g_would_allow" if grant.withdrawn else f"g_would_allow_{lapsed}"
        text.append(f"\n   {t(would, lang)}")
    sends = grant.sends.get(lang) or grant.sends.get("de")
    if sends:  # the words of `policy describe`: what is sent and how
        for line in sends:
            text.append(f"\n   {line}")
    else:
        text.append(f"\n   {t('g_fields', lang, fields=', '.join(grant.fields))}")
    text.append(f"\n   {t('g_devices', lang, devices=_devices(grant, names))}")
    basis = t(f"lb_{grant.legal_basis}", lang) if f"lb_{grant.legal_basis}" else grant.legal_basis
    text.append(f"\n   {t('g_basis', lang, basis=basis)}")
    if grant.consent:
        by = grant.consent.get("given_by", "?")
        at = str(grant.consent.get("given_at", "?"))[:10]
        text.append(f" – {t('g_consent', lang, by=by, at=at)}")
    if grant.withdrawn:
        held = f"g_held_{grant.held_by}" if grant.held_by else "g_withdrawn"
        text.append(f"\n   {t(held, lang)}", style="bold red")
    if grant.lapsed is not None:
        text.append(f"\n   {t(f'g_lapsed_{grant.lapsed}', lang)}", style="bold red")
    text.append(f"   [{grant.id}]", style="dim")
    return text


# Actions that hold a grant back (their dialog says what stops); the others release it again.
HOLDS = ("withdraw", "object", "restrict")


class GrantsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,g", "app.pop_screen", "k_back"),
        Binding("x,delete", "withdraw", "k_withdraw"),
        Binding("l", "app.language", "k_lang"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.policies: list[CustomerPolicy] = []
        self.live = False
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="grants-note")
        yield OptionList(id="grants")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.update_lang()
        start(self, self.reload, group="grants", exclusive=True)

    async def reload(self) -> None:
        self.policies, self.live = await ctx(self).source.policies()
        self.loaded = True
        self.update_lang()

    def update_lang(self) -> None:
        app = ctx(self)
        lang = app.lang
        relabel(self, lang)
        self.title = t("grants_title", lang)
        note = self.query_one("#grants-note", Static)
        note.update("" if self.live or not self.loaded else t("g_read_only", lang))
        note.display = self.loaded and not self.live
        options = self.query_one("#grants", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        if self.loaded and not self.policies:
            options.add_option(Option(t("g_none", lang), disabled=True))
        for policy in self.policies:
            head = Text(policy.name, style="bold underline")
            if policy.version:
                head.append(f"  {t('g_version', lang, v=policy.version[:19])}", style="dim")
            if policy.error:
                error = neutralise(policy.error, lines=True)
                head.append(f"\n{t('g_error', lang, e=error)}", style="red")
            if policy.describe.get(lang):
                head.append(f"\n{policy.describe[lang]}", style="italic")
            options.add_option(Option(head, disabled=True))
            for grant in policy.grants:
                options.add_option(
                    Option(
                        grant_text(grant, app.names, lang), id=f"{policy.customer}\x00{grant.id}"
                    )
                )
        if highlighted is not None and highlighted < options.option_count:
            options.highlighted = highlighted
        self.refresh_bindings()

    def selected(self) -> tuple[CustomerPolicy, GrantView] | None:
        options = self.query_one("#grants", OptionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        if option_id is None:
            return None
        customer, _, grant_id = option_id.partition("\x00")
        for policy in self.policies:
            if policy.customer == customer:
                for grant in policy.grants:
                    if grant.id == grant_id:
                        return policy, grant
        return None

    def action_withdraw(self) -> None:
        """The rights dialog for the highlighted grant (tui/rights.py)."""
        app = ctx(self)
        lang = app.lang
        picked = self.selected()
        if picked is None:
            return
        policy, grant = picked
        if not self.live:
            self.notify(t("g_read_only", lang), severity="warning")
            return
        actions = choices(grant)
        params = {
            "recipient": grant.recipient_name,
            "purpose": grant.purpose.get(lang, grant.id),
            "fields": _fields(grant, lang),
            "devices": _devices(grant, app.names),
        }
        body = t("confirm_body" if actions[0] in HOLDS else "rights_release_body", lang, **params)
        title = t("rights_title", lang, purpose=params["purpose"])

        def answered(request: RightRequest | None) -> None:
            if request is not None:
                action, by = request
                start(self, partial(self._act, policy.customer, grant.id, action, by), group="act")

        self.app.push_screen(RightScreen(title, body, actions), answered)

    async def _act(self, customer: str, grant: str, action: str, by: str) -> None:
        app = ctx(self)
        try:
            result = await app.source.act(customer, grant, action, by)
        except SourceError as exc:
            self.notify(t("withdraw_failed", app.lang, e=exc), severity="error")
            return
        await self.reload()
        self.app.push_screen(ReceiptScreen(result))
