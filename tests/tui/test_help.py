"""The help screen and the confirmation (tui/help.py) in the real app under Pilot: help opens on
``?`` in the app's language and closes on Escape; a confirmation is yes only on ``y`` or its
button, and Escape or the focused default button say no."""

from __future__ import annotations

from textual.widgets import Button, Static

from gateway.bench.sample import SampleLog
from tests.tui.conftest import make_app, settle
from tui.help import ConfirmScreen, HelpScreen
from tui.i18n import t


async def test_help_opens_in_the_app_s_language_and_closes(sample: SampleLog) -> None:
    app = make_app(sample.path, lang="en")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body", Static)
        assert str(body.render()).strip() == t("help_body", "en").strip()
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)


async def test_a_confirmation_is_yes_only_when_said(sample: SampleLog) -> None:
    app = make_app(sample.path, lang="de")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        answers: list[bool | None] = []
        for keys in (["escape"], ["enter"], ["y"]):
            app.push_screen(ConfirmScreen("Widerrufen?", "Was dann passiert"), answers.append)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConfirmScreen)
            # The safe answer has the focus: Enter alone never confirms.
            assert app.focused is screen.query_one("#no", Button)
            assert str(screen.query_one("#yes", Button).label) == t("confirm_yes", "de")
            for key in keys:
                await pilot.press(key)
            await pilot.pause()
        assert answers == [False, False, True]
        app.push_screen(ConfirmScreen("Widerrufen?", "…"), answers.append)
        await settle(pilot)
        await pilot.click("#yes")
        await settle(pilot)
        assert answers[-1] is True
