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


def test_a_body_orjson_writes_back_unchanged_is_its_own_exact_form() -> None:
    # Compact JSON whose numbers orjson writes as they came: the fast parse is released as is.
    compact = Parsed(b'{"seq":7,"sent_ns":1764806400000000000,"t":21.5,"s":"23.20"}')
    compact.parse()
    assert compact.exact() is compact.root
    # The same bytes but one literal orjson would change: the literal-keeping parse.
    literal = Parsed(b'{"seq":7,"t":23.20}')
    literal.parse()
    assert literal.exact() is not literal.root
    assert dumps_exact(literal.exact()) == b'{"seq":7,"t":23.20}'


def test_a_body_nested_deeper_than_orjson_writes_is_still_kept_exactly() -> None:
    # orjson reads 300 levels but refuses to write more than 255: the check falls back to the
    # scan instead of failing the message.
    body = Parsed(b'{"a":' + b"[" * 300 + b"1.50" + b"]" * 300 + b"}")
    assert body.parse() == JSON
    exact = body.exact()
    assert isinstance(exact, dict)
    value = exact["a"]
    for _ in range(300):
        assert isinstance(value, list)
        (value,) = value
    assert isinstance(value, Literal) and value.literal == "1.50"
