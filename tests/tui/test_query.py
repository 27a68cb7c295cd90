"""Filter/find query parsing: a table of inputs and what they mean."""

from __future__ import annotations

import pytest

from tui.query import Query, QueryError, parse_query


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Query()),
        ("badge", Query("badge", words=("badge",))),
        ("device:oven-1", Query("device:oven-1", devices=("oven-1",))),
        ('device:"Backofen 1"', Query('device:"Backofen 1"', devices=("backofen 1",))),
        ("Gerät:Ofen", Query("Gerät:Ofen", devices=("ofen",))),
        ("recipient:Wartung", Query("recipient:Wartung", recipients=("wartung",))),
        ("kunde:schmidt", Query("kunde:schmidt", customers=("schmidt",))),
        ("decision:withheld", Query("decision:withheld", outcomes=("withheld",))),
        (
            "entscheidung:zurückgehalten decision:altered",
            Query("entscheidung:zurückgehalten decision:altered", outcomes=("withheld", "altered")),
        ),
        ("12:30 x", Query("12:30 x", words=("12:30", "x"))),
    ],
)
def test_parse(text: str, expected: Query) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("decision:maybe", "expected shared, altered or withheld, found 'maybe'"),
        ("device:", "device: needs a value"),
        ('device:"open', "No closing quotation"),
    ],
)
def test_errors_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text)
