"""RFC 8785 (JCS), checked with the RFC's own examples: §3.2.2, §3.2.3 and Appendix B."""

from __future__ import annotations

import contextlib
import struct

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.log.jcs import CanonicalError, canonical, is_canonical

# RFC 8785 Appendix B: IEEE 754 bits -> the ECMAScript serialization.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_numbers_as_appendix_b(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical(value) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_have_no_form(bits: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    with pytest.raises(CanonicalError):
        canonical(value)


def test_the_example_of_section_3_2_2() -> None:
    source = (
        b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical(orjson.loads(source)) == expected
    assert is_canonical(expected) and not is_canonical(source)


def test_the_sorting_example_of_section_3_2_3() -> None:
    source = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = [v for v in orjson.loads(canonical(source)).values()]
    assert order == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_limits_are_refused() -> None:
    with pytest.raises(CanonicalError):
        canonical({"n": 2**53})
    with pytest.raises(CanonicalError):
        canonical({"s": "\ud800"})
    with pytest.raises(CanonicalError):
        canonical({"b": b"bytes"})
    assert (
        canonical({"n": 2**53 - 1, "m": -(2**53 - 1)})
        == b'{"m":-9007199254740991,"n":9007199254740991}'
    )


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_double_round_trips_in_the_shortest_form(value: float) -> None:
    text = canonical(value).decode()
    assert float(text) == value
    # the shortest digits that round-trip, as Python's repr finds them
    digits = repr(abs(value)).split("e")[0].replace(".", "").strip("0") or "0"
    shown = text.replace("-", "").split("e")[0].replace(".", "").strip("0") or "0"
    assert shown == digits


# Where orjson's sorted output and RFC 8785 differ: (raw bytes, whether they are canonical).
# For each, orjson re-serialising the value reproduces the raw bytes when RFC 8785 does not, or
# the other way round, so a check by orjson alone would answer wrongly.
ORJSON_DIFFERS = [
    (b'{"a":100.0}', False),  # JCS: 100
    (b'{"a":100}', True),
    (b"-0.0", False),  # JCS: 0
    (b'{"a":1e-6}', False),  # JCS: 0.000001
    (b'{"a":0.000001}', True),
    (b'{"a":1e-7}', True),
    (b'{"a":1e21}', False),  # JCS (and orjson): 1e+21
    (b'{"a":1e+21}', True),
    (b'{"a":9007199254740992}', False),  # beyond 2**53 - 1: no JCS form
    (b'{"a":-9007199254740992}', False),
    (b'{"a":9007199254740991}', True),
    ('{"\ufb01":1,"\U0001f600":2}'.encode(), False),  # code point order; JCS sorts UTF-16 units
    ('{"\U0001f600":2,"\ufb01":1}'.encode(), True),
    ('{"a":"\U0001f600"}'.encode(), True),
    (b'"\\u001F"', False),  # JCS: lower-case hex
    (b'"\\u001f"', True),
    (b'"\\u007f"', False),  # JCS leaves DEL raw
    (b'"\x7f"', True),
    (b'"\\/"', False),
    (b'"\\ud83d\\ude00"', False),  # JCS writes the character as UTF-8
    (b"[" * 66 + b"]" * 66, False),  # deeper than canonical() accepts
    (b"[" * 64 + b"]" * 64, True),
    (b'{"t":"20.5 \xc2\xb0C","n":3}', False),  # names unsorted
    (b'{"n":3,"t":"20.5 \xc2\xb0C"}', True),  # a digit and a dot inside a string
]


def _orjson_alone(raw: bytes) -> bool:
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS) == raw


def _exact(raw: bytes) -> bool:
    try:
        return canonical(orjson.loads(raw)) == raw
    except CanonicalError:
        return False


@pytest.mark.parametrize(("raw", "expected"), ORJSON_DIFFERS)
def test_the_fast_check_agrees_with_rfc_8785_where_orjson_does_not(
    raw: bytes, expected: bool
) -> None:
    assert _exact(raw) is expected
    assert is_canonical(raw) is expected


def test_the_vectors_include_cases_orjson_alone_gets_wrong() -> None:
    wrong = [raw for raw, expected in ORJSON_DIFFERS if _orjson_alone(raw) != expected]
    # floats in orjson's form, a huge integer, code point order, deep nesting
    assert len(wrong) >= 6, wrong


def test_orjson_escapes_control_characters_as_rfc_8785_does() -> None:
    # the fast path rests on this: every character U+0000..U+007F and a few beyond
    text = "".join(map(chr, range(0x80))) + "\u2028\u2029\ufeff€"
    assert orjson.dumps(text) == canonical(text)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_the_fast_check_answers_as_the_exact_one(value: object) -> None:
    forms = [orjson.dumps(value, option=orjson.OPT_SORT_KEYS), orjson.dumps(value)]
    with contextlib.suppress(CanonicalError):  # none for a huge integer, a lone surrogate
        forms.append(canonical(value))
    for raw in forms:
        assert is_canonical(raw) is _exact(raw)
