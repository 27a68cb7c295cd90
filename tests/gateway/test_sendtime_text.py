"""The words of send-time entries (gateway/messages/sendtime_text.py): both languages say it,
with the same placeholders, so no entry is written half in words and half in braces."""

from __future__ import annotations

from string import Formatter

import pytest

from gateway.messages import sendtime_text

TEXTS = {
    name: getattr(sendtime_text, name)
    for name in sendtime_text.__all__
    if name.isupper() and name not in ("CAUSES", "STOP_CAUSES", "UNDECIDED", "MANY_CLAUSES")
}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_text_has_both_languages_with_the_same_placeholders(name: str) -> None:
    texts = TEXTS[name]
    assert set(texts) == {"de", "en"}
    assert _fields(texts["de"]) == _fields(texts["en"]), name


def test_every_cause_reads_in_both_languages() -> None:
    causes = sendtime_text.CAUSES
    assert (
        set(causes["de"])
        == set(causes["en"])
        == {
            "hours",
            "validity",
            "withdrawn",
            "objected",
            "restricted",
            "released",
        }
    )
    for why in causes["en"]:
        assert _fields(causes["de"][why]) == _fields(causes["en"][why])


def test_every_cause_a_grant_stopped_applying_reads_in_both_languages() -> None:
    causes = sendtime_text.STOP_CAUSES
    assert (
        set(causes["de"])
        == set(causes["en"])
        == {"hours", "validity", "consent", "withdrawn", "objected", "restricted", "held"}
    )
    for why in causes["en"]:
        assert _fields(causes["de"][why]) == _fields(causes["en"][why])


def test_every_reason_a_row_could_not_be_decided_again_reads_in_both_languages() -> None:
    undecided = sendtime_text.UNDECIDED
    assert set(undecided["de"]) == set(undecided["en"]) == {"no_source", "no_birth"}


def test_each_clause_of_a_several_grants_entry_reads_in_both_languages() -> None:
    clauses = sendtime_text.MANY_CLAUSES
    assert set(clauses["de"]) == set(clauses["en"]) == {"began", "stopped"}
    for kind in clauses["en"]:
        assert _fields(clauses["de"][kind]) == _fields(clauses["en"][kind]) == {"grant", "cause"}
