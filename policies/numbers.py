"""Numbers exactly as the device wrote them: a literal-keeping JSON parse and its writer.

``orjson`` reads every number into a 64-bit int or a double and writes the double back in its
shortest form, so a field released under ``keep`` could leave changed while the explanation
said "unchanged": ``23.20`` left as ``23.2``, ``-0`` as ``0``, ``123456789012345678901234567890``
(beyond 64 bits) as ``1.2345678901234568e+29``, and ``1e999`` made the whole message "not JSON".

``loads_exact`` parses with the standard library and keeps, for every number that would not be
written back character for character, its literal in a ``Literal`` (a ``float``, so conditions
and treatments see a number as before). ``dumps_exact`` writes those literals back verbatim
(``orjson.Fragment``). Numbers that round-trip stay plain ``int``/``float``: the common case
costs nothing extra when written.
"""

from __future__ import annotations

import json
import math
import re
from typing import NoReturn

import orjson
from pydantic import JsonValue

__all__ = [
    "Literal",
    "NumberOutOfRange",
    "dumps_exact",
    "is_number_error",
    "loads_exact",
    "round_trips",
]

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1  # orjson writes ints in [-2**63, 2**64)
_INT_DIGITS = 19  # digits of 2**63; shorter literals always fit, far longer are kept as text


# Number forms orjson may not write back as they stand: an exponent (1E5, 1e16), 16 or more
# digits and points in a row (beyond what a double holds, or written with an exponent; a
# decimal of at most 15 significant digits comes back unchanged), a fraction ending
# in 0 after another digit (23.20, 1.00), 4 zeros after the point (0.00001 is 1e-05) and -0.
# Digits inside strings can match too: that costs only the exact parse, never a wrong number.
# The scans start at a literal character or run on a digit mask: a regex trying every digit
# position cost more than the exact parse it saves.
_MASK = bytes(
    ord("0") if c in b"0123456789." else ord("e") if c in b"eE" else ord(" ") for c in range(256)
)
_FRACTION_ZERO = re.compile(rb"\.\d*\d0(?!\d)")
_MINUS_ZERO = re.compile(rb"-0(?![\d.eE])")


def round_trips(raw: bytes) -> bool:
    """True when every number in ``raw`` is written back by orjson exactly as it stands, so
    the fast parse may be released as is; False means: parse with ``loads_exact``.

    The common case (``231.37``, ``230``, ``1717400000``, a nanosecond time stamp
    ``1764806400000000000``) costs a few scans of the bytes, not a second, 6x slower parse of
    every released message."""
    if b".0000" in raw or _FRACTION_ZERO.search(raw) or _MINUS_ZERO.search(raw):
        return False
    mask = raw.translate(_MASK)
    if b"0e" in mask:  # an exponent (E is masked as e)
        return False
    start = mask.find(_LONG)
    while start >= 0:
        # A maximal run (``find`` lands on its first digit); a regex scan cost 10x this.
        head = mask[start : start + _INT_DIGITS + 2]
        length = len(head) - len(head.lstrip(b"0"))  # 22: more than 20 in a row
        if not _integer_fits(raw, start, start + length):
            return False
        start = mask.find(_LONG, start + length)
    return True


# A run of 16 or more digits and points (on the mask): beyond what a double holds, unless it is
# an integer orjson reads as an int. Time stamps in nanoseconds (19 digits) are the common case.
_LONG = b"0" * 16


def _integer_fits(raw: bytes, start: int, end: int) -> bool:
    """True when ``raw[start:end]`` (a maximal run of digits and points) is an integer that
    orjson reads as an int, so writes back unchanged: no point, within [-2**63, 2**64). The
    run may be inside a string; then any answer is safe (a string writes back as it came)."""
    if end - start > _INT_DIGITS + 1:
        return False
    digits = raw[start:end]
    if b"." in digits:
        return False
    value = int(digits)
    if start and raw[start - 1] == 0x2D:  # "-"
        value = -value
    return _INT64_MIN <= value <= _UINT64_MAX


class Literal(float):
    """A JSON number that would not write back as it was written; ``literal`` is its text.

    Its float value is the nearest double (``inf`` beyond the double range, as ``1e999``).
    """

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, value: float, literal: str) -> Literal:
        number = super().__new__(cls, value)
        number.literal = literal
        return number

    @property
    def integral(self) -> bool:
        """True when the device wrote an integer (no fraction, no exponent)."""
        return not any(c in self.literal for c in ".eE")


def _float(text: str) -> float:
    value = float(text)
    # repr is what orjson writes for most numbers and costs a fraction of dumps (hot path);
    # not for exponents: repr(1e-05) is "1e-05", orjson writes 0.00001.
    if ("e" not in text and "E" not in text and repr(value) == text) or orjson.dumps(
        value
    ) == text.encode("ascii"):
        return value
    return Literal(value, text)


def _int(text: str) -> int | float:
    if len(text) < _INT_DIGITS and text != "-0":  # within 64 bits, written back as it came
        return int(text)
    if len(text) <= _INT_DIGITS + 1:
        value = int(text)
        if _INT64_MIN <= value <= _UINT64_MAX and str(value) == text:
            return value
    return Literal(float(text), text)


def _constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def loads_exact(text: str) -> JsonValue:
    """Parse JSON ``text``, keeping number literals that would not round-trip (``Literal``).

    Raises ``ValueError`` for what is not JSON (``NaN`` and ``Infinity`` included), and for a
    string or key with an unpaired surrogate (``"\\ud800"``), which orjson refuses too: read,
    it could not be written into the log's canonical documents, and one such key behind a
    ``1e999`` rolled back the whole batch at the commit."""
    parsed: JsonValue = json.loads(
        text, parse_float=_float, parse_int=_int, parse_constant=_constant
    )
    if _ESCAPED_SURROGATE.search(text) and _has_surrogate(parsed):
        raise ValueError("a string holds an unpaired surrogate (\\ud800-\\udfff)")
    return parsed


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _has_surrogate(value: JsonValue) -> bool:
    """Whether a string or key anywhere in ``value`` holds an unpaired surrogate (a paired one
    is one character once parsed). Iterative: nesting is as deep as the parser allowed."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_SURROGATE = re.compile("[\ud800-\udfff]")


class NumberOutOfRange(ValueError):
    """A number beyond a double (``1e999``) inside what was to be written: most recipients'
    software cannot read it, so it is not released (``policies.paths`` says so per field)."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"the number {literal[:40]} is beyond the range of a double")
        self.literal = literal


def _default(value: object) -> object:
    if isinstance(value, Literal):
        if not math.isfinite(value):
            raise NumberOutOfRange(value.literal)
        return orjson.Fragment(value.literal)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def dumps_exact(value: object) -> bytes:
    """Compact JSON with every ``Literal`` written as the device wrote it; NumberOutOfRange
    for one beyond a double (a kept object holding ``1e999``)."""
    try:
        return orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError as exc:  # orjson wraps what ``default`` raises
        if isinstance(exc.__cause__, NumberOutOfRange):
            raise exc.__cause__ from None
        raise


def is_number_error(exc: orjson.JSONDecodeError) -> bool:
    """True when orjson refused a number it cannot hold (``1e999``), not the JSON itself."""
    return "number" in str(exc)
