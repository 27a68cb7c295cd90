"""The parsed body: JSON, text, not UTF-8, numbers orjson cannot hold, leaves listed once."""

from __future__ import annotations

from policies.body import BAD_UTF8, JSON, TEXT, UNPARSED, Parsed
from policies.numbers import Literal, dumps_exact


def test_states() -> None:
    body = Parsed(b'{"t": 1}')
    assert body.state == UNPARSED
    assert body.parse() == JSON and body.root == {"t": 1}
    assert Parsed(b"Online").parse() == TEXT
    assert Parsed(b"\xff\xfe").parse() == BAD_UTF8


def test_numbers_orjson_refuses_are_kept_as_written() -> None:
    body = Parsed(b'{"big": 1e999, "t": 23.20}')
    assert body.parse() == JSON  # orjson refuses 1e999; the literal-keeping parse holds it
    big = body.root["big"]
    assert isinstance(big, Literal) and big.literal == "1e999"
    assert body.exact() is body.root


def test_exact_keeps_literals_only_when_needed() -> None:
    plain = Parsed(b'{"t": 21.5}')
    plain.parse()
    assert plain.exact() is plain.root  # every number writes back unchanged: no second parse
    literal = Parsed(b'{"t": 23.20}')
    literal.parse()
    assert dumps_exact(literal.exact()) == b'{"t":23.20}'


def test_leaves() -> None:
    body = Parsed(b'{"a": {"b": 1}, "c": [2]}')
    body.parse()
    assert list(body.leaves().items) == ["a.b", "c[0]"]
    text = Parsed(b"Online")
    text.parse()
    assert list(text.leaves().items) == ["$payload"]
