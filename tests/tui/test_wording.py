"""Words the TUI shows a customer that say where data went: it left the box, not the device."""

from __future__ import annotations

from tui.i18n import t


def test_the_payload_shown_is_the_one_that_left_the_box() -> None:
    assert t("d_payload", "de") == "Nutzdaten, wie sie die Box verließen"
    assert t("d_payload", "en") == "Payload as it left the box"
