"""The ``?`` help screen and the yes/no confirmation used before a withdrawal."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.context import ctx
from tui.i18n import relabel, t

__all__ = ["ConfirmScreen", "HelpScreen"]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "k_back")]

    def compose(self) -> ComposeResult:
        lang = ctx(self).lang
        relabel(self, lang)
        with VerticalScroll(id="help-box"):
            yield Static(t("help_title", lang), classes="dialog-title")
            yield Static(t("help_body", lang), id="help-body")


class ConfirmScreen(ModalScreen[bool]):
    """Says what will happen and asks; dismisses with True only on the confirm button or ``y``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "confirm_no", show=False),
        Binding("y,j", "answer(True)", "confirm_yes", show=False),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        lang = ctx(self).lang
        with Vertical(id="confirm-box"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button(t("confirm_yes", lang), variant="error", id="yes")
                yield Button(t("confirm_no", lang), variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
