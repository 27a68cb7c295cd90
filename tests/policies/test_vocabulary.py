"""The profiles' words: every category, treatment and piece of advice exists in every language
a customer reads, and the advice is careful where data is personal."""

from __future__ import annotations

import pytest

from policies.profiles.vocabulary import (
    ADVICE,
    CATEGORY_LABELS,
    LANGUAGES,
    TREATMENT_RATIONALE,
    Category,
    Personal,
    Treatment,
)


@pytest.mark.parametrize("category", list(Category))
def test_every_category_has_a_label_and_advice_in_every_language(category: Category) -> None:
    assert set(CATEGORY_LABELS[category]) == set(LANGUAGES)
    treatment, _, rationale = ADVICE[category]
    assert set(rationale) == set(LANGUAGES)
    assert all(text.strip() and text.endswith(".") for text in rationale.values())
    assert isinstance(treatment, Treatment)


@pytest.mark.parametrize("treatment", list(Treatment))
def test_every_treatment_has_a_reason_in_every_language(treatment: Treatment) -> None:
    assert set(TREATMENT_RATIONALE[treatment]) == set(LANGUAGES)


def test_the_advice_is_careful_where_data_is_personal() -> None:
    assert ADVICE[Category.LOCATION][:2] == (Treatment.COARSEN, "1000 m")
    assert ADVICE[Category.IDENTIFIER][0] is Treatment.PSEUDONYMISE
    for category in (Category.FREE_TEXT, Category.NETWORK, Category.RAW_DATA):
        assert ADVICE[category][0] is Treatment.WITHHOLD
    assert ADVICE[Category.MEASUREMENT][0] is Treatment.KEEP
    # A treatment's reason is its category's when they agree: one wording, not two.
    assert TREATMENT_RATIONALE[Treatment.COARSEN] is ADVICE[Category.LOCATION][2]


def test_the_words_are_read_only_and_personal_has_three_grades() -> None:
    with pytest.raises(TypeError):
        ADVICE[Category.LOCATION] = ADVICE[Category.MEASUREMENT]  # type: ignore[index]
    assert [p.value for p in Personal] == ["none", "direct", "indirect"]
