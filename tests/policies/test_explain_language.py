"""Explanations read as a person writes them: no raw codes, the box (not the device) is where
data left, Sparkplug DATA before its BIRTH explained as such, lists and plurals by Babel."""

from __future__ import annotations

import re

import pytest

from policies.decision import REASON_CODES, Decision, Outcome, Reason
from policies.explain import explain, reason_text, samples_text

from .test_sparkplug import DDATA, OVEN, engine, send

_CODE = re.compile(r"\b[a-z]+_[a-z_]+\b|\$")
PARAMS = {
    "field": "temp",
    "fields": "temp",
    "hours": "06:00-22:00",
    "interval": "60 s",
    "window": "300 s",
    "condition": "temp > 100",
    "count": "1",
    "min": "3",
    "what": "consent",
    "problem": "not_a_number",
}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_no_reason_shows_a_raw_code(lang: str) -> None:
    for code in REASON_CODES:
        text = reason_text(lang, Reason(code, PARAMS))
        assert not _CODE.search(text), (code, text)
        assert not text.startswith("reason."), code


def test_data_before_birth_is_explained_as_such_not_as_a_missing_grant() -> None:
    e = engine()
    (decision,) = send(e, OVEN.format("DDATA"), DDATA)
    for lang, birth, deny in (
        ("en", "birth message (BIRTH)", "unless a grant allows it"),
        ("de", "Geburtsnachricht (BIRTH)", "was keine Freigabe erlaubt"),
    ):
        text = e.explain(decision, lang)
        assert birth in text and deny not in text, text


def test_a_list_body_is_named_in_words_not_as_dollar_payload() -> None:
    decision = Decision(
        "acme",
        "dev",
        "r1",
        Outcome.WITHHELD,
        grant="g1",
        policy_version="0" * 64,
        reason=Reason("nothing_released", {"fields": "a"}),
        withheld=("$payload[0].name", "$payload[1].name"),
    )
    for lang in ("de", "en"):
        text = explain(decision, lang)
        assert "$" not in text, text
    assert "die Listeneinträge des Inhalts ([].name)" in explain(decision, "de")


def test_sample_counts_take_the_plural_form_babel_gives() -> None:
    assert samples_text("de", 1, "nom") == "1 Messwert"
    assert samples_text("de", 2, "nom") == "2 Messwerte"
    assert samples_text("de", 1200, "dat") == "1.200 Messwerten"
    assert samples_text("en", 1, "dat") == "1 sample"
    assert samples_text("en", 1200, "dat") == "1,200 samples"
