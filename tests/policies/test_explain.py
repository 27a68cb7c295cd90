"""Explanations: catalog coverage, legal-basis wording, no message values, natural de/en."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policies.catalog import CATALOGS, LANGUAGES, tr
from policies.decision import REASON_CODES, Alteration, Decision, LegalBasis, Outcome, Reason
from policies.engine import Engine
from policies.explain import dynamic_msgids, explain, legal_basis_text, treatment_text
from policies.message import Message

from .conftest import NOW, make_engine

SOURCES = Path(__file__).parents[2] / "policies"


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in SOURCES.glob("*.py"):
        found |= set(re.findall(r'\btr\(\s*\w+,\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    return found | set(dynamic_msgids())


def test_every_msgid_exists_in_both_catalogs() -> None:
    ids = used_msgids()
    assert len(ids) > 80
    for lang in LANGUAGES:
        missing = sorted(ids - set(CATALOGS[lang]))
        assert missing == [], f"{lang} catalog lacks {missing}"
    assert set(CATALOGS["de"]) == set(CATALOGS["en"])


def test_placeholders_match_between_languages() -> None:
    for msgid, german in CATALOGS["de"].items():
        english = CATALOGS["en"][msgid]
        assert set(re.findall(r"\{(\w+)\}", german)) == set(re.findall(r"\{(\w+)\}", english)), (
            msgid
        )


BASES = [
    (
        LegalBasis.CONSENT,
        "Einwilligung (Art. 6 Abs. 1 lit. a DSGVO)",
        "consent (GDPR Art. 6(1)(a))",
    ),
    (
        LegalBasis.CONTRACT,
        "Vertragserfüllung (Art. 6 Abs. 1 lit. b DSGVO)",
        "performance of a contract (GDPR Art. 6(1)(b))",
    ),
    (
        LegalBasis.LEGAL_OBLIGATION,
        "rechtliche Verpflichtung (Art. 6 Abs. 1 lit. c DSGVO)",
        "legal obligation (GDPR Art. 6(1)(c))",
    ),
    (
        LegalBasis.VITAL_INTERESTS,
        "Schutz lebenswichtiger Interessen (Art. 6 Abs. 1 lit. d DSGVO)",
        "vital interests (GDPR Art. 6(1)(d))",
    ),
    (
        LegalBasis.PUBLIC_TASK,
        "Aufgabe im öffentlichen Interesse (Art. 6 Abs. 1 lit. e DSGVO)",
        "public task (GDPR Art. 6(1)(e))",
    ),
    (
        LegalBasis.LEGITIMATE_INTERESTS,
        "berechtigtes Interesse (Art. 6 Abs. 1 lit. f DSGVO)",
        "legitimate interests (GDPR Art. 6(1)(f))",
    ),
]


@pytest.mark.parametrize(("basis", "german", "english"), BASES)
def test_legal_basis_wording(basis: LegalBasis, german: str, english: str) -> None:
    assert legal_basis_text("de", basis) == german
    assert legal_basis_text("en", basis) == english
    decision = Decision(
        "c",
        "d",
        "r",
        Outcome.SHARED,
        grant="g",
        policy_version="ab" * 32,
        purpose={"de": "Zweck", "en": "Purpose"},
        legal_basis=basis,
        shared=("t",),
        stream="telemetry",
    )
    assert german in explain(decision, "de")
    assert english in explain(decision, "en")


@pytest.mark.parametrize(
    ("treatment", "detail", "german", "english"),
    [
        ("pseudonymise", "", "durch ein Pseudonym ersetzt", "replaced by a pseudonym"),
        ("round", "0.5", "auf Vielfache von 0,5 gerundet", "rounded to multiples of 0.5"),
        ("coarsen", "1000 m", "Raster von etwa 1000 m", "grid of about 1000 m"),
        ("truncate", "minute", "auf die Minute gekürzt", "truncated to the minute"),
        ("truncate", "day", "auf den Tag gekürzt", "truncated to the day"),
        (
            "aggregate",
            "mean, max; 300 s",
            "Mittelwert und Maximum je 5 Minuten",
            "mean and maximum per 5 minutes",
        ),
        ("aggregate", "count; 60 s", "Anzahl je Minute", "count per minute"),
    ],
)
def test_treatment_wording(treatment: str, detail: str, german: str, english: str) -> None:
    assert german in treatment_text("de", treatment, detail)
    assert english in treatment_text("en", treatment, detail)


@pytest.mark.parametrize("code", REASON_CODES)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_reason_renders(code: str, lang: str) -> None:
    decision = Decision(
        "c",
        "d",
        "r",
        Outcome.WITHHELD,
        grant="g",
        policy_version="0" * 64,
        reason=Reason(code),
        stream="s",
    )
    text = explain(decision, lang)
    assert tr(lang, f"reason.{code}") not in ("", f"reason.{code}")
    assert "{" not in text and "reason." not in text


def test_texts_repeat_and_hold_no_values() -> None:
    engine = make_engine(
        {
            "fields": {"t": {"round": 0.5}, "serial": "pseudonymise", "r[].v": "keep"},
            "topic": "x/{user}",
            "topic_levels": {"user": "pseudonymise"},
        }
    )
    texts = set()
    for index, value in enumerate([21.37, 19.24, 30.0]):
        payload = (
            f'{{"t":{value},"serial":"SN-{index}9","secret":"pw{index}",'
            f'"r":[{{"v":{index}}},{{"v":7}}]}}'
        ).encode()
        (decision,) = engine.evaluate(Message(f"acme/dev/user{index}", payload, NOW), NOW)
        for lang in LANGUAGES:
            text = engine.explain(decision, lang)
            for needle in (str(value), f"SN-{index}9", f"pw{index}", f"user{index}", "r[1]"):
                assert needle not in text
            texts.add(text)
    assert len(texts) == 2  # one text per language, for all three messages


def test_german_reads_naturally() -> None:
    engine = make_engine({"fields": {"t": "keep"}})
    (decision,) = engine.evaluate(Message("acme/dev/u", b'{"t":1,"x":2}', NOW), NOW)
    german = engine.explain(decision, "de")
    assert german.startswith("R1 hat Daten von Device (Datenstrom „telemetry“) bekommen")
    assert "Zweck „Wartung“" in german and "Hier geblieben: x." in german
    assert "Entschieden hat die Freigabe „g1“" in german
    english = engine.explain(decision, "en")
    assert "for the purpose “Maintenance”" in english and "Kept here: x." in english


def test_unknown_device_and_unknown_language(engine: Engine) -> None:
    (decision,) = engine.evaluate(Message("x/y", b"{}", NOW), NOW)
    assert "keiner Richtlinie" in engine.explain(decision, "de")
    assert "no policy" in engine.explain(decision, "fr")  # falls back to English


def test_alteration_paths_fold_array_indices() -> None:
    decision = Decision(
        "c",
        "d",
        "r",
        Outcome.ALTERED,
        grant="g",
        policy_version="0" * 64,
        altered=(Alteration("r[0].v", "round", "1"), Alteration("r[1].v", "round", "1")),
    )
    assert explain(decision, "en").count("r[].v rounded") == 1


def test_a_withheld_decision_without_a_stream_or_version_names_neither() -> None:
    """Withheld before its stream was known (a flood), or a queued release withheld after its
    policy stopped running: no 'stream “”', no 'policy version .'."""
    flood = Decision(
        customer="c",
        device="oven-1",
        recipient=None,
        outcome=Outcome.WITHHELD,
        reason=Reason("flooding", {"limit": "10"}),
    )
    assert explain(flood, "en") == (
        "Nothing from oven-1 left this box, because the device sent more than 10 messages per "
        "second; what exceeded that stays here."
    )
    assert explain(flood, "de").startswith("Von oven-1 ging nichts hinaus, denn ")
    queued = Decision(
        customer="c",
        device="oven-1",
        recipient="r1",
        outcome=Outcome.WITHHELD,
        grant="g1",
        policy_version="v" * 64,  # the version it was decided under, which no longer decides
        reason=Reason("policy_not_loaded"),
        withheld=("$payload",),
    )
    english = explain(queued, "en")
    assert english.startswith("r1 received nothing from oven-1, because no policy")
    assert "stream" not in english and "policy version" not in english
    assert "Datenstrom" not in explain(queued, "de")


def test_a_release_that_may_have_arrived_is_not_said_to_have_received_nothing() -> None:
    """Its recipient removed while a publish of it went unacknowledged (upstreams.py)."""
    decision = Decision(
        customer="c",
        device="oven-1",
        recipient="r1",
        outcome=Outcome.WITHHELD,
        grant="g1",
        policy_version="v" * 64,
        reason=Reason("recipient_removed_maybe_sent"),
        withheld=("$payload",),
    )
    english = explain(decision, "en")
    assert english.startswith(
        "r1 is sent nothing more of this from oven-1, because the recipient was removed from "
        "this box's configuration; an earlier attempt to send this release to it may have gone "
        "unconfirmed, so it may have arrived there once."
    )
    assert "received nothing" not in english
    assert "nichts bekommen" not in explain(decision, "de")
