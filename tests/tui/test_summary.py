"""The list's one-line summary: the first sentence, never cut inside one ("Dr.", "Art. 6", a
quoted name with a full stop), and for a withheld entry the reason it was withheld."""

from __future__ import annotations

import pytest

from policies.decision import Reason
from policies.explain import reason_text
from tui.summary import _summaries, summary_of


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (
            "Consent “demand-heating” was withdrawn by Dr. Miriam Berg. It applies at once.",
            "Consent “demand-heating” was withdrawn by Dr. Miriam Berg.",
        ),
        (
            "Einwilligung widerrufen von Prof. Dr. Anna Schmidt am 03.12.2026. Gilt sofort.",
            "Einwilligung widerrufen von Prof. Dr. Anna Schmidt am 03.12.2026.",
        ),
        (
            "Legal basis: consent (GDPR Art. 6(1)(a)). Passed on unchanged.",
            "Legal basis: consent (GDPR Art. 6(1)(a)).",
        ),
        (
            "Stadtwerke received data from “Room. One” (stream “x”). Legal basis: consent.",
            "Stadtwerke received data from “Room. One” (stream “x”).",
        ),
        (
            "Stadtwerke erhielt Daten von „Raum. Eins“ für „Heizen“. Rechtsgrundlage: Einwilligung.",
            "Stadtwerke erhielt Daten von „Raum. Eins“ für „Heizen“.",
        ),
        ("Nichts gesendet, z. B. Ort. Danach mehr.", "Nichts gesendet, z. B. Ort."),
        ("First part; second part.", "First part;"),
        ("One sentence without a stop", "One sentence without a stop"),
        ("Line one. More\nline two.", "Line one."),
    ],
)
def test_the_summary_is_the_whole_first_sentence(text: str, summary: str) -> None:
    assert summary_of(text) == summary


def test_a_withheld_entry_says_why_in_the_list() -> None:
    doc = {"outcome": "withheld", "reason": "withdrawn", "reason_params": {}}
    texts = {
        "de": "Nichts ging an Stadtwerke. Grund: …",
        "en": "Nothing went to Stadtwerke. Why: …",
    }
    found = _summaries(doc, texts)
    for lang in ("de", "en"):
        assert reason_text(lang, Reason("withdrawn", {}))[1:] in found[lang]
    assert found["en"] == "The grant was withdrawn: Nothing went to Stadtwerke."
    shared = _summaries({"outcome": "shared"}, texts)
    assert shared["en"] == "Nothing went to Stadtwerke."
