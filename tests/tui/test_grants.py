"""Who gets what (tui/grants.py): a grant in plain words, held-back grants marked by what holds
them, and, without a running gateway, the policy files shown read-only: nothing to withdraw from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson
from textual.widgets import OptionList, Static

from gateway.bench.sample import NAMES, SampleLog
from gateway.operations.control_model import grant_info
from policies.engine import Engine
from policies.message import Message
from tests.policies.conftest import Keys, compile_text
from tests.tui.conftest import make_app, settle
from tui.grants import GrantsScreen, grant_text
from tui.model import GrantView
from tui.rights import RightScreen

GRANT = GrantView(
    id="advice",
    recipient="energy-provider",
    recipient_name="Stadtwerke Energie",
    purpose={"de": "Energieberatung", "en": "Energy advice"},
    legal_basis="consent",
    consent={"given_by": "Jana Müller", "given_at": "2026-01-01T00:00:00Z"},
    withdrawn=False,
    fields=("power", "total"),
    devices=("oven-1", "*"),
)


def test_a_grant_in_plain_words() -> None:
    text = grant_text(GRANT, NAMES, "en").plain
    assert text.splitlines() == [
        "✓ Stadtwerke Energie gets, for “Energy advice”",
        "   fields: power, total",
        "   from: Backofen 1, *",
        "   legal basis: consent – consent by Jana Müller on 2026-01-01   [advice]",
    ]
    sends = replace(GRANT, sends={"en": ("power, rounded to 10",)})
    assert "   power, rounded to 10" in grant_text(sends, NAMES, "en").plain.splitlines()
    assert "fields:" not in grant_text(sends, NAMES, "en").plain
    # No English text: the German one, never nothing.
    assert "Energieberatung" in grant_text(GRANT, NAMES, "de").plain


def test_a_held_back_grant_says_what_holds_it() -> None:
    withdrawn = replace(GRANT, withdrawn=True)
    objected = replace(GRANT, withdrawn=True, held_by="objection")
    assert grant_text(withdrawn, NAMES, "en").plain.startswith("✗ ")
    assert "✗ consent withdrawn" in grant_text(withdrawn, NAMES, "en").plain
    assert "✗ objected to (GDPR Art. 21)" in grant_text(objected, NAMES, "en").plain
    assert "✗ " not in grant_text(GRANT, NAMES, "en").plain
    # Held back, it sends nothing now: the heading does not say the recipient "gets" anything
    # (as the portal's page says it), only what the grant allows once it applies again.
    lines = grant_text(withdrawn, NAMES, "en").plain.splitlines()
    assert lines[:2] == [
        "✗ Stadtwerke Energie gets nothing now for “Energy advice”",
        "   Once this grant applies again, it allows:",
    ]
    assert "bekommt jetzt nichts" in grant_text(withdrawn, NAMES, "de").plain


EXPIRING = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - {pattern: "bakery/oven-1/telemetry", stream: telemetry}
grants:
  - id: energy
    recipient: r1
    purpose: {de: "Energieberatung", en: "Energy advice"}
    legal_basis: contract
    devices: [oven-1]
    valid: {from: 2026-01-01T00:00:00Z, until: 2026-06-01T00:00:00Z}
    fields:
      temperature: keep
"""


def test_a_grant_outside_its_validity_says_the_recipient_gets_nothing_as_the_engine_decides() -> (
    None
):
    """Expired or not begun, every message under it is withheld; the view said "✓ Stadtwerke
    gets, for “Energy advice”" all the same."""
    policy = compile_text(EXPIRING)
    engine = Engine([policy], Keys())
    body = orjson.dumps({"temperature": 180})
    for now, lapsed, line, would in (
        (
            datetime(2026, 12, 3, tzinfo=UTC),
            "validity_expired",
            "✗ expired: the grant's validity",
            "While this grant was in force, it allowed:",
        ),
        (
            datetime(2025, 12, 3, tzinfo=UTC),
            "validity_not_yet_valid",
            "✗ not in force yet",
            "Once this grant is in force, it allows:",
        ),
    ):
        (decision,) = engine.evaluate(
            Message("bakery/oven-1/telemetry", body, now, False, None), now
        )
        assert decision.outcome == "withheld"  # what the engine does at ``now`` …
        view = GrantView.from_info(grant_info(policy.grants[0], {"r1": "Stadtwerke"}, now=now))
        assert view.lapsed == lapsed
        for lang, heading in (
            ("en", "✗ Stadtwerke gets nothing now for “Energy advice”"),
            ("de", "✗ Stadtwerke bekommt jetzt nichts für „Energieberatung“"),
        ):
            lines = grant_text(view, NAMES, lang).plain.splitlines()
            assert lines[0] == heading  # … is what the view says
        assert f"\n   {line}" in grant_text(view, NAMES, "en").plain
        assert grant_text(view, NAMES, "en").plain.splitlines()[1] == f"   {would}"
    inside = datetime(2026, 3, 1, tzinfo=UTC)
    view = GrantView.from_info(grant_info(policy.grants[0], {"r1": "Stadtwerke"}, now=inside))
    assert view.lapsed is None
    assert grant_text(view, NAMES, "en").plain.startswith("✓ Stadtwerke gets, for “Energy advice”")


async def test_without_the_gateway_the_policy_files_are_shown_read_only(
    sample: SampleLog,
) -> None:
    app = make_app(sample.path, lang="en")  # the example policies, no control socket
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GrantsScreen) and screen.loaded and not screen.live
        note = screen.query_one("#grants-note", Static)
        assert note.display and "read-only view from the policy files" in str(note.render())
        options = screen.query_one("#grants", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "baeckerei-schmidt\x00maintenance" in ids
        assert "spedition-weber\x00delivery-tracking" in ids
        options.highlighted = ids.index("baeckerei-schmidt\x00maintenance")
        picked = screen.selected()
        assert picked is not None and picked[1].id == "maintenance"
        await pilot.press("x")
        await settle(pilot)
        assert not isinstance(app.screen, RightScreen)  # nothing to withdraw from
        assert any("read-only" in n.message for n in app._notifications)
