"""The root of the error tree: a located error reads file:line:column: key: message."""

from __future__ import annotations

import pytest

from policies.errors import EinblickError, LocatedError, PolicyError


@pytest.mark.parametrize(
    ("line", "column", "key", "expected"),
    [
        (None, None, None, "bakery.yaml: no grants"),
        (7, None, None, "bakery.yaml:7: no grants"),
        (7, 3, None, "bakery.yaml:7:3: no grants"),
        (7, 3, "grants", "bakery.yaml:7:3: grants: no grants"),
        (None, 3, "grants", "bakery.yaml: grants: no grants"),  # a column without its line
    ],
)
def test_a_located_error_says_where(
    line: int | None, column: int | None, key: str | None, expected: str
) -> None:
    exc = PolicyError("bakery.yaml", "no grants", line=line, column=column, key=key)
    assert str(exc) == expected
    assert (exc.path, exc.line, exc.column, exc.key, exc.message) == (
        "bakery.yaml",
        line,
        column,
        key,
        "no grants",
    )
    assert isinstance(exc, LocatedError) and isinstance(exc, EinblickError)
