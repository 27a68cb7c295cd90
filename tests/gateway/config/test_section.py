"""What every section shares: a misspelt key is refused, a loaded section does not change, and a
name has one shape."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.section import Section, check_name


class Sample(Section):
    port: int = 1


@pytest.mark.parametrize("name", ["a", "oven-maker", "box-3f9a1c", "0", "a" * 63])
def test_names_that_fit_client_ids_topics_and_file_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "Oven", "oven maker", "oven_maker", "a.b", "a/b", "a" * 64, "é"]
)
def test_other_names_are_refused_with_what_was_found(name: str) -> None:
    with pytest.raises(ValueError, match="lower-case letters, digits and '-'") as caught:
        check_name(name)
    assert repr(name) in str(caught.value)


def test_an_unknown_key_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(ValidationError, match="prot"):
        Sample.model_validate({"prot": 2})


def test_a_loaded_section_cannot_be_changed() -> None:
    section = Sample(port=2)
    with pytest.raises(ValidationError, match="frozen"):
        section.port = 3
