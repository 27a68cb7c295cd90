"""Device text is data: keys that look like Rich markup or reorder text are shown literally."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import orjson

from gateway.bench.sample import T0, SampleLog
from gateway.log.entry import draft_from_decision
from gateway.visible import neutralise
from policies.compiler import compile_policy
from policies.engine import Engine
from policies.examples import RECIPIENTS, example_path
from policies.loader import load_policy
from policies.message import Message
from tests.tui.conftest import make_app, plain, settle
from tui.details import DetailsScreen

# Keys a device chose: Rich markup (a closing tag with nothing open crashed the details screen),
# HTML, a right-to-left override that would show "temp.exe" as "tempexe.", and an ESC sequence.
HOSTILE = {
    "[/x]": 1,
    "[bold red]boom[/]": 2,
    "<script>alert(1)</script>": 3,
    "temp\u202eexe.txt": 4,
    "\x1b[2Jcleared": 5,
}


class _NoKeys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return b"k" * 32


def _hostile_entry(sample: SampleLog) -> None:
    """The bakery's oven sends the hostile keys; the real engine decides and explains it."""
    policy = compile_policy(load_policy(example_path("bakery")), RECIPIENTS)
    engine = Engine([policy], _NoKeys())
    payload = orjson.dumps({"temperature": 180.0, **HOSTILE})
    at = T0 + timedelta(hours=2)
    decisions = engine.evaluate(Message("bakery/oven-1/telemetry", payload, at, False), at)
    assert any(set(HOSTILE) <= set(d.withheld) for d in decisions), decisions
    sample.write(
        [
            draft_from_decision(
                d,
                at=at,
                source_digest=hashlib.sha256(payload).digest(),
                text_de=engine.explain(d, "de"),
                text_en=engine.explain(d, "en"),
            )
            for d in decisions
        ]
    )


async def test_details_of_an_entry_with_markup_and_bidi_keys_show_them_literally(
    sample: SampleLog,
) -> None:
    _hostile_entry(sample)
    app = make_app(sample.path)
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot)
        row = app.log_lines.row_at(app.log_lines.cursor)  # following: the newest, ours
        assert row is not None and row.device == "oven-1"
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailsScreen), screen
        text = plain(screen.body, width=400)
        assert "[/x]" in text and "[bold red]boom[/]" in text
        assert "<script>alert(1)</script>" in text
        # The override is shown as an escape, never applied; so is the ESC.
        assert "temp\\u202eexe.txt" in text and "\u202e" not in text
        assert "\\u001b[2Jcleared" in text and "\x1b" not in text
        # And the screen really drew it: the compositor rendered the body without a markup error.
        await pilot.press("l")
        await settle(pilot)
        assert "[/x]" in plain(screen.body, width=400)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DetailsScreen)


async def test_a_filter_that_looks_like_markup_is_shown_as_typed(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.apply_filter("[/x]")
        await settle(pilot)
        from tests.tui.test_app import status_text

        assert "[/x]" in status_text(app)


def test_neutralise_shows_every_reordering_or_hiding_character() -> None:
    hidden = "\x00\x07\x1b\x7f\x85\u061c\u200b\u200e\u200f\u2028\u202a\u202b\u202c\u202d\u202e"
    hidden += "\u2066\u2067\u2068\u2069\ufeff\n\t"
    shown = neutralise(f"a{hidden}b")
    assert shown.startswith("a\\u0000\\u0007\\u001b") and shown.endswith("\\u000a\\u0009b")
    assert all(ch.isprintable() for ch in shown), shown
    assert neutralise("Zeile 1\nZeile 2", lines=True) == "Zeile 1\nZeile 2"
    assert neutralise("Größe [°C] – ok ✓") == "Größe [°C] – ok ✓"  # ordinary text untouched
