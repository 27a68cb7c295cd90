"""The rights dialog: what the customer can do about a grant, asked and answered in one place.

Opened from "who gets what" (``x``). It offers the actions the grant's legal basis gives
(gateway/rights/consent.py): withdraw a consent, object to a grant on legitimate interests
(GDPR Art. 21), ask for restriction (Art. 18), or undo what is in force (give, lift). The
intended action is selected already, the name field has the focus, and Enter confirms: the one
thing the customer must add is who they are, which the signed entry and the receipt carry. The
gateway's answer is then shown (``ReceiptScreen``): the receipt, or "nothing changed" with the
entry that already did it.

The CLI (``einblick consent …``) and the customer portal send the same control ops with the
same fields; nothing here decides what an action means.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import orjson
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from gateway.locale import when
from tui.context import ctx
from tui.i18n import Lang, t
from tui.model import GrantView, RightResult

__all__ = ["ReceiptScreen", "RightRequest", "RightScreen", "choices"]

RightRequest = tuple[str, str]  # (action, by)


def choices(grant: GrantView) -> tuple[str, ...]:
    """The actions offered for ``grant``, the intended one first: undo what holds it back, or
    the actions its legal basis gives (as the gateway lists them)."""
    if grant.withdrawn:
        return ("give",) if (grant.held_by or "consent") == "consent" else ("lift",)
    if grant.actions:
        return grant.actions
    return ("withdraw",) if grant.legal_basis == "consent" else ("restrict",)


class RightScreen(ModalScreen[RightRequest | None]):
    """Asks which action and who takes it; dismisses with (action, by), or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "confirm_no", show=False),
    ]

    def __init__(self, title: str, body: str, actions: tuple[str, ...]) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.actions = actions

    def compose(self) -> ComposeResult:
        lang = ctx(self).lang
        with Vertical(id="confirm-box"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.body, id="confirm-body")
            with RadioSet(id="right-actions"):
                for index, action in enumerate(self.actions):
                    yield RadioButton(t(f"act_{action}", lang), value=index == 0, id=action)
            yield Static(t("rights_by", lang))
            yield Input(id="right-by", placeholder=t("rights_by_hint", lang))
            yield Static("", id="right-problem")
            with Horizontal(id="confirm-buttons"):
                yield Button(t("rights_confirm", lang), variant="error", id="yes")
                yield Button(t("confirm_no", lang), variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#right-by", Input).focus()

    @property
    def action(self) -> str:
        pressed = self.query_one("#right-actions", RadioSet).pressed_button
        return pressed.id if pressed is not None and pressed.id else self.actions[0]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self.confirm()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def confirm(self) -> None:
        by = self.query_one("#right-by", Input).value.strip()
        if not by:
            problem = self.query_one("#right-problem", Static)
            problem.update(t("rights_by_missing", ctx(self).lang))
            self.query_one("#right-by", Input).focus()
            return
        self.dismiss((self.action, by))


class ReceiptScreen(ModalScreen[None]):
    """The gateway's answer: what was recorded (with the signed receipt), or that nothing
    changed and which entry already did it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "k_back", show=False),
    ]

    def __init__(self, result: RightResult) -> None:
        super().__init__()
        self.result = result

    def summary(self, lang: Lang, zone: str = "UTC") -> str:
        """The answer in one paragraph; its time on the clock of ``zone`` (an IANA name)."""
        result = self.result
        what = t(f"kind_{result.kind}", lang)
        if not result.changed and not result.entry_seq:  # nothing recorded that it could name
            return t("receipt_nothing", lang)
        key = "receipt_body" if result.changed else "receipt_unchanged"
        at = when(lang, datetime.fromisoformat(result.at), zone) if result.at else "—"
        return t(key, lang, what=what, seq=result.entry_seq, by=result.by, at=at)

    def compose(self) -> ComposeResult:
        lang = ctx(self).lang
        result = self.result
        title = t("receipt_title" if result.changed else "receipt_unchanged_title", lang)
        with VerticalScroll(id="help-box"):
            yield Static(title, classes="dialog-title")
            zone = getattr(ctx(self).tz, "key", "UTC")  # a ZoneInfo names itself; else UTC
            yield Static(self.summary(lang, zone), id="receipt-summary")
            if result.receipt is not None:
                receipt = orjson.dumps(result.receipt, option=orjson.OPT_INDENT_2).decode()
                yield Static(receipt, id="receipt-json", markup=False)
