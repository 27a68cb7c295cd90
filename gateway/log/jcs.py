"""RFC 8785 JSON Canonicalization Scheme (JCS): the one encoding every entry body is hashed over.

A body's digest must be recomputable by a stranger in any language, so its bytes follow a
published rule rather than one library's incidental output:

- objects: members sorted by their names as UTF-16 code units (RFC 8785 §3.2.3), no whitespace;
- strings: UTF-8; only ``"``, ``\\`` and U+0000..U+001F are escaped — ``\\b \\t \\n \\f \\r``
  by their short forms, the rest as ``\\u00xx`` in lower-case hex (§3.2.2.2);
- numbers: ECMAScript's ``Number.prototype.toString`` of the IEEE 754 double (§3.2.2.3);
  integers outside ±(2**53 − 1) and NaN/Infinity are refused, as the RFC requires;
- ``true``, ``false``, ``null`` as literals.

A lone surrogate in a string cannot be encoded as UTF-8 and is refused. ``canonical(value)`` is
the serializer; ``is_canonical(raw)`` checks that stored bytes are already canonical (the
verifier's check: a body re-serialised differently would hash differently).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import orjson

__all__ = ["MAX_SAFE_INTEGER", "CanonicalError", "canonical", "is_canonical"]

MAX_SAFE_INTEGER = 2**53 - 1
_SHORT = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_ESCAPES = {chr(c): _SHORT.get(c, f"\\u{c:04x}") for c in range(0x20)}
_ESCAPES['"'] = '\\"'
_ESCAPES["\\"] = "\\\\"
_NEEDS_ESCAPE = frozenset(_ESCAPES)
# Nesting deeper than this is not a body Einblick writes; refusing bounds the recursion.
MAX_DEPTH = 64


class CanonicalError(ValueError):
    """A value has no RFC 8785 form (NaN, a huge integer, a lone surrogate, a foreign type)."""


def _string(text: str) -> str:
    if not _NEEDS_ESCAPE.isdisjoint(text):
        text = "".join(_ESCAPES.get(c, c) for c in text)
    return f'"{text}"'


def _number(value: float) -> str:
    """ECMAScript Number::toString (ECMA-262 §7.1.12.1) of a finite double.

    Python's ``repr`` gives the shortest digits that round-trip, which is what ECMAScript
    requires (the closest of those when there is a choice); only the layout differs.
    """
    if not math.isfinite(value):
        raise CanonicalError(f"JSON has no form for {value!r} (RFC 8785 §3.2.2.3)")
    if value == 0:
        return "0"  # -0 too
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # value = 0.d1d2…dk × 10**n, the position of the decimal point after the first digit
    exponent = int(exp_text) if exp_text else 0
    if whole == "0":  # 0.00ddd: the point sits before the fraction's leading zeros
        point = exponent - (len(frac) - len(frac.lstrip("0")))
    else:
        point = len(whole) + exponent
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        out = (digits if k == 1 else digits[0] + "." + digits[1:]) + exp
    return sign + out


def _encode(value: object, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalError(f"nesting deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(
                f"integer {value} is outside ±(2**53 − 1): not exactly representable in JSON"
            )
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        names = list(value)
        if not all(isinstance(name, str) for name in names):
            raise CanonicalError("object member names must be strings")
        names.sort(key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        out.append("{")
        for i, name in enumerate(names):
            if i:
                out.append(",")
            out.append(_string(name))
            out.append(":")
            _encode(value[name], out, depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out, depth + 1)
        out.append("]")
    else:
        raise CanonicalError(f"no JSON form for a {type(value).__name__}")


def canonical(value: object) -> bytes:
    """The RFC 8785 bytes of ``value`` (dicts, lists/tuples, str, int, float, bool, None)."""
    out: list[str] = []
    _encode(value, out, 0)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("a string holds a lone surrogate, which UTF-8 cannot carry") from exc


# Where orjson's sorted output and RFC 8785 can differ, each a reason to skip the fast path:
# a float (orjson writes 100.0, -0.0 and 1e-6; JCS 100, 0 and 0.000001), a character outside
# the BMP (orjson sorts names by code point, JCS by UTF-16 code unit: U+1F600 sorts before
# U+FB01 there), and nesting deeper than ``canonical`` accepts. Integers beyond ±(2**53 − 1)
# are refused by OPT_STRICT_INTEGER. Escapes agree (both escape exactly ", \ and
# U+0000..U+001F, with the same short forms and lower-case hex: tested).
_NON_BMP_LEAD = re.compile(rb"[\xf0-\xf7]")  # the first byte of a 4-byte UTF-8 sequence
_FAST = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _has_float(value: object) -> bool:
    """Whether a value orjson parsed holds a float anywhere (exact types: it makes no others)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is float:
            return True
    return False


def _orjson_may_be_exact(raw: bytes, value: object) -> bool:
    """Whether orjson's sorted output of ``value`` (parsed from ``raw``) is its RFC 8785 form."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # brackets in strings count too: safe
        return False
    if not raw.isascii() and _NON_BMP_LEAD.search(raw):
        return False
    return not _has_float(value)


def is_canonical(raw: bytes) -> bool:
    """Whether ``raw`` is one JSON value in exactly its RFC 8785 form.

    A verifier asks this of every body and names document of a bundle, so the common case
    takes orjson's sorted re-serialisation (~50x faster than :func:`canonical`) where it is
    known to agree with RFC 8785; any difference, and every value outside that case, gets the
    exact serializer's answer.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if _orjson_may_be_exact(raw, value):
        try:
            if orjson.dumps(value, option=_FAST) == raw:
                return True
        except orjson.JSONEncodeError:
            pass  # an integer beyond 53 bits: the exact check refuses it with its reason
    try:
        return canonical(value) == raw
    except CanonicalError:
        return False
