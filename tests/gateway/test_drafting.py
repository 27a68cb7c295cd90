"""Decisions into drafts: explained once per decision shape, the failure entry that cannot fail."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.log.entry import draft_from_decision
from gateway.messages.drafting import Drafter, _key
from gateway.messages.pseudonyms import Keyring
from policies.decision import Decision, LegalBasis, Outcome, Reason
from policies.engine import Engine
from tests.gateway.test_end_to_end import BAKERY
from tests.policies.conftest import compile_text

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CUSTOMER = "baeckerei-schmidt"


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def _engine() -> Engine:
    return Engine([compile_text(BAKERY, {"oven-maker": "Ofenbau Müller"})], Keyring())


def _decision(outcome: Outcome = Outcome.SHARED, reason: Reason | None = None) -> Decision:
    return Decision(
        customer=CUSTOMER,
        device="oven-1",
        recipient="oven-maker",
        outcome=outcome,
        grant="maintenance",
        shared=("door_open",),
        reason=reason,
    )


def test_a_draft_carries_both_explanations_and_the_sources_digest() -> None:
    engine = _engine()
    digest = hashlib.sha256(b'{"door_open": true}').digest()
    draft = Drafter().draft(engine, _decision(), digest, NOW)
    assert draft.source_digest == digest
    assert draft.text_de == engine.explain(_decision(), "de")
    assert draft.text_en == engine.explain(_decision(), "en")
    assert draft.text_de != draft.text_en


def test_a_decision_shape_is_explained_once(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine()
    asked: list[str] = []
    explain = engine.explain

    def counting(decision: Decision, lang: str) -> str:
        asked.append(lang)
        return explain(decision, lang)

    monkeypatch.setattr(engine, "explain", counting)
    drafter = Drafter()
    for payload in (b"1", b"2", b"3"):
        drafter.draft(engine, _decision(), _digest(payload), NOW)
    assert asked == ["de", "en"]
    # Another reason is another text.
    drafter.draft(engine, _decision(Outcome.WITHHELD, Reason("withdrawn")), _digest(b"4"), NOW)
    assert asked == ["de", "en", "de", "en"]


def test_a_small_cache_evicts_and_explains_again(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine()
    asked: list[str] = []
    explain = engine.explain
    monkeypatch.setattr(engine, "explain", lambda d, lang: asked.append(lang) or explain(d, lang))
    drafter = Drafter(cache_bytes=1)  # holds the newest shape only
    other = _decision(Outcome.WITHHELD, Reason("withdrawn"))
    for decision in (_decision(), _decision(), other, _decision()):
        drafter.draft(engine, decision, _digest(b"1"), NOW)
    assert len(asked) == 6  # the first shape, the other, the first again


def test_the_failure_entry_is_written_even_when_explaining_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine()

    def broken(decision: Decision, lang: str) -> str:
        raise RuntimeError("catalog gone")

    monkeypatch.setattr(engine, "explain", broken)
    with caplog.at_level(logging.ERROR):
        draft = Drafter().failed(engine, "bakery/oven-1/telemetry", b"\xff", ValueError("bad"), NOW)
    assert (draft.reason, dict(draft.reason_params)) == ("internal_error", {"error": "ValueError"})
    assert (draft.customer, draft.device, draft.outcome) == (CUSTOMER, "oven-1", "withheld")
    assert draft.withheld == ("$payload",)
    assert "interner Fehler" in draft.text_de and "internal error" in draft.text_en
    assert draft.source_digest == hashlib.sha256(b"\xff").digest()
    assert "withheld and acknowledged" in caplog.text and "ValueError" in caplog.text


def test_the_failure_entry_of_an_unknown_topic_names_no_customer() -> None:
    draft = Drafter().failed(_engine(), "nobody/knows", b"", KeyError("x"), NOW)
    assert (draft.customer, draft.device, draft.outcome) == (None, None, "withheld")
    assert draft.reason == "internal_error"


def test_decisions_that_differ_only_in_a_fields_problem_are_explained_apart() -> None:
    # The cache key once left out the per-field reasons: the second message would have been
    # explained with the first one's problem, a false sentence in a signed entry.
    engine = _engine()
    drafter = Drafter()
    base = _decision(Outcome.ALTERED)
    word = Decision(**{**_fields(base), "field_reasons": {"temp": Reason("not_a_number")}})
    range_ = Decision(**{**_fields(base), "field_reasons": {"temp": Reason("out_of_range")}})
    first = drafter.draft(engine, word, _digest(b"1"), NOW)
    second = drafter.draft(engine, range_, _digest(b"2"), NOW)
    assert first.text_en == engine.explain(word, "en")
    assert second.text_en == engine.explain(range_, "en")
    assert first.text_en != second.text_en


def _fields(decision: Decision) -> dict[str, object]:
    return {f: getattr(decision, f) for f in decision.__dataclass_fields__}


def _generic(value: object) -> object:
    """The plain rule the cache key follows: reasons and mappings by value, sorted."""
    if isinstance(value, Reason):
        return (value.code, _generic(value.params))
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _generic(v)) for k, v in value.items()))
    return value


_names = st.text(alphabet="abcdé.[]0", max_size=6)
_mappings = st.dictionaries(_names, _names, max_size=3)
_reasons = st.builds(
    Reason, st.sampled_from(["withdrawn", "treatment_failed", "rate_limited"]), _mappings
)


@settings(max_examples=300)
@given(
    purpose=st.one_of(_mappings, _mappings.map(MappingProxyType)),
    basis=st.one_of(st.none(), st.sampled_from(list(LegalBasis))),
    reason=st.one_of(st.none(), _reasons),
    problems=st.dictionaries(_names, _reasons, max_size=3),
    omitted=st.dictionaries(st.sampled_from(["shared", "withheld"]), st.integers(0, 9)),
    shared=st.lists(_names, max_size=3).map(tuple),
)
def test_the_explanation_key_is_the_plain_rule_whatever_the_mapping_type(
    *,
    purpose: Mapping[str, str],
    basis: LegalBasis | None,
    reason: Reason | None,
    problems: dict[str, Reason],
    omitted: dict[str, int],
    shared: tuple[str, ...],
) -> None:
    # ``_key`` dispatches on exact types to be cheap per decision; it must key every decision as
    # the plain rule does, or two different decisions could share one explanation text.
    decision = Decision(
        customer=CUSTOMER,
        device="oven-1",
        recipient="oven-maker",
        outcome=Outcome.ALTERED,
        grant="maintenance",
        purpose=purpose,
        legal_basis=basis,
        reason=reason,
        shared=shared,
        field_reasons=problems,
        omitted=omitted,
        topic="t",
        payload=b"p",
    )
    plain = tuple(
        _generic(getattr(decision, f.name))
        for f in dataclasses.fields(Decision)
        if f.name not in ("payload", "topic")
    )
    assert _key(decision)[1:] == plain


def test_a_repeated_shape_is_drafted_as_its_own_decision_would_be() -> None:
    # The second draft of a shape is built from the first one's fields: it must carry the second
    # message's own time, digest, topic and content, and equal what its decision alone gives.
    engine = _engine()
    drafter = Drafter()
    first = dataclasses.replace(_decision(), topic="t/1", payload=b'{"door_open":true}')
    second = dataclasses.replace(_decision(), topic="t/2", payload=b'{"door_open":false}')
    later = datetime(2026, 3, 1, 9, 0, 1, tzinfo=UTC)
    drafter.draft(engine, first, _digest(first.payload or b""), NOW)
    got = drafter.draft(engine, second, _digest(second.payload or b""), later)
    expected = draft_from_decision(
        second,
        at=later,
        source_digest=_digest(second.payload or b""),
        text_de=engine.explain(second, "de"),
        text_en=engine.explain(second, "en"),
    )
    assert got == expected
    assert (got.topic, got.content, got.at) == ("t/2", b'{"door_open":false}', later)
    # What the drafter remembers of the shape holds nothing of either message.
    remembered = drafter._explained.get(_key(first))
    assert remembered is not None
    assert (remembered.topic, remembered.content, remembered.source_digest) == (
        None,
        None,
        bytes(32),
    )
