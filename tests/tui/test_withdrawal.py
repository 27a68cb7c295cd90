"""Consent withdrawal end to end: in the TUI, through the running gateway, into the log; the
dialog asks who acts, Enter confirms the intended action, and the receipt is shown."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from textual.widgets import Input, OptionList, RadioSet

from gateway.config import load_config
from gateway.operations.control_model import ConsentReply
from tests.gateway.harness import running_gateway
from tests.tui.conftest import settle, until
from tui.app import EinblickApp
from tui.grants import GrantsScreen
from tui.local import LocalSource
from tui.model import RightResult
from tui.rights import ReceiptScreen, RightScreen

TRACKER = """
einblick_policy: 1
customer: spedition-meier
name: Spedition Meier
language: en
devices:
  - id: van-7
    name: Van 7
    kind: tracker
    topics:
      - pattern: "owntracks/{user}/van-7"
        stream: location
grants:
  - id: routing
    recipient: logistics
    purpose: {de: "Routenplanung", en: "Route planning"}
    legal_basis: consent
    consent: {given_by: "Jan Meier", given_at: 2026-01-01T00:00:00Z}
    devices: [van-7]
    topic: "fleet/{device}"
    fields:
      batt: keep
"""

POSITION = b'{"_type":"location","lat":52.19,"lon":7.68,"batt":75,"tid":"J7"}'


async def test_withdrawing_in_the_tui_withholds_the_next_message(tmp_path: Path) -> None:
    devices = [("spedition-meier", "van-7", "Van 7")]
    async with running_gateway(tmp_path, {"fleet.yaml": TRACKER}, devices) as h:
        van = await h.device("spedition-meier", "van-7")
        await van.publish("owntracks/jan/van-7", POSITION, 1)
        await h.cloud.wait_for(1)
        config = load_config(h.directory / "einblick.yaml")
        source = LocalSource(
            config.database_path,
            customer="spedition-meier",
            control_socket=config.control_socket,
            policies_dir=config.policies_path,
        )
        app = EinblickApp(source, tz=UTC)  # no --lang: the customer's policy says en
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.lang == "en"
            log = app.log_lines
            await until(pilot, lambda: log.count >= 1)
            first = log.row_at(log.count - 1)
            assert first is not None and first.outcome == "shared"

            await pilot.press("g")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, GrantsScreen) and screen.live
            options = screen.query_one("#grants", OptionList)
            options.highlighted = next(
                i
                for i in range(options.option_count)
                if options.get_option_at_index(i).id == "spedition-meier\x00routing"
            )
            await pilot.press("x")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, RightScreen)
            assert "Route planning" in dialog.body and "batt" in dialog.body
            # The intended action is the default: a consent grant is withdrawn.
            pressed = dialog.query_one("#right-actions", RadioSet).pressed_button
            assert pressed is not None and pressed.id == "withdraw"
            # Enter without a name does nothing but ask for it.
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is dialog
            assert dialog.query_one("#right-by", Input).has_focus
            await pilot.press(*"Jan Meier")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ReceiptScreen))
            shown = app.screen
            assert isinstance(shown, ReceiptScreen) and shown.result.changed
            assert shown.result.by == "Jan Meier" and shown.result.kind == "consent_withdrawn"
            assert shown.result.receipt is not None
            assert shown.result.receipt["receipt"]["by"] == "Jan Meier"
            assert shown.summary("en", "UTC").startswith(
                f"Consent withdrawn: log entry #{shown.result.entry_seq}, by Jan Meier"
            )
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, GrantsScreen)
            await until(pilot, lambda: any(g.withdrawn for p in screen.policies for g in p.grants))

            committed = h.gateway.pipeline.stats.committed if h.gateway.pipeline else 0
            await van.publish("owntracks/jan/van-7", POSITION, 1)
            await h.wait_committed(committed + 1)
            await pilot.press("escape")
            await settle(pilot)
            await log.poll_now()
            await settle(pilot)
            last = log.row_at(log.count - 1)
            assert last is not None and last.outcome == "withheld"
            assert log.view is not None
            kinds = [r.kind for r in await log.view.rows(0, log.count)]
            assert "consent_withdrawn" in kinds
            detail = await source.detail(last.seq)
            assert detail is not None and detail.reason == "withdrawn"
            assert "withdrawn" in detail.texts["en"].lower()
            consent = next(r for r in await log.view.rows(0, log.count) if r.kind != "decision")
            consent_detail = await source.detail(consent.seq)
            assert consent_detail is not None
            assert consent_detail.texts["en"].startswith("Jan Meier withdrew consent 'routing'")
        await van.close()
        assert len(h.cloud.received) == 1, "the withdrawn grant still sent something"


def test_the_receipt_screen_says_plainly_when_nothing_changed() -> None:
    nothing = RightResult.from_reply(
        ConsentReply.model_validate(
            {
                "action": "give",
                "changed": False,
                "message": "…",
                "kind": "consent_given",
                "entry_seq": 0,
            }
        )
    )
    assert ReceiptScreen(nothing).summary("en") == (
        "Nothing to do: this grant already applies as its policy says. Nothing was written."
    )
    again = RightResult.from_reply(
        ConsentReply.model_validate(
            {
                "action": "withdraw",
                "changed": False,
                "kind": "consent_withdrawn",
                "entry_seq": 7,
                "by": "Jan Meier",
                "at": "2026-12-03T16:00:00+00:00",
            }
        )
    )
    # On the customer's clock, written as the language writes dates.
    assert ReceiptScreen(again).summary("de", "Europe/Berlin") == (
        "Einwilligung widerrufen galt bereits: Protokolleintrag #7, von Jan Meier, am "
        "03.12.2026 17:00:00 MEZ. Es wurde nichts Neues geschrieben."
    )
