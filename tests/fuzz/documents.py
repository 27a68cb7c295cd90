"""Adversarial JSON documents built from fuzzer bytes, with SECRET planted where no grant reaches.

The text is written out by hand rather than serialised, so it can hold what a serialiser never
produces: duplicate keys, NaN and Infinity, numbers beyond any float or 64-bit integer, lone
surrogate escapes, invalid UTF-8, nesting thousands deep, keys that look like paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.fuzz.checks import SECRET, inside_a_grant

__all__ = ["Source", "build_document"]

# Field names the example grants use: a document made of them reaches the field walk.
KEYS = (
    "ts",
    "temperature",
    "setpoint",
    "door_open",
    "burner_on",
    "energy_kwh",
    "serial",
    "errors",
    "code",
    "_type",
    "lat",
    "lon",
    "vel",
    "batt",
    "tst",
    "event",
    "desc",
    "occupancy",
    "illuminance_lux",
    "ENERGY",
    "Power",
    "Total",
    "Time",
    "operator",
    "tid",
    "acc",
    "seq.operator",
    "errors[0]",
    "*",
    "$payload",
    "",
    "a.b",
    "[0]",
    "\u00e4",
    "\\u0000",
)
SCALARS = (
    b"0",
    b"-0",
    b"1e999",
    b"-1e999",
    b"1.7976931348623157e309",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"123456789012345678901234567890123456789",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"4.9e-325",
    b"true",
    b"false",
    b"null",
    b'""',
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\xff\xfe"',
    b'"\xc3\x28"',
    b'"\\u0000"',
    b'"2026-06-03T09:30:12Z"',
    b'"not a time"',
    b"1.5",
    b"[]",
    b"{}",
    b"0x10",
    b"01",
    b"1.",
    b".5",
    b"+1",
)


@dataclass
class Source:
    """What the generator draws from: an atheris FuzzedDataProvider or Hypothesis."""

    int_in_range: Callable[[int, int], int]
    text: Callable[[int], str]

    def pick(self, items: tuple[bytes, ...] | tuple[str, ...]) -> int:
        return self.int_in_range(0, len(items) - 1)


def _string(text: str) -> bytes:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out).encode("utf-8")


def _value(source: Source, path: str, depth: int, budget: list[int]) -> bytes:
    budget[0] -= 1
    kind = source.int_in_range(0, 9) if depth < 12 and budget[0] > 0 else 0
    if kind <= 3:
        if kind == 0 and not inside_a_grant(path or "$payload"):
            return _string(SECRET)
        if kind == 1:
            return _string(source.text(source.int_in_range(0, 40)))
        return SCALARS[source.pick(SCALARS)]
    if kind == 4:  # deep nesting, beyond what parsers accept or just under it
        levels = (1, 100, 1023, 1024, 1025, 5000)[source.int_in_range(0, 5)]
        return b"[" * levels + b"]" * levels
    if kind <= 6:
        items = [
            _value(source, f"{path or '$payload'}[{i}]", depth + 1, budget)
            for i in range(source.int_in_range(0, 4))
        ]
        return b"[" + b",".join(items) + b"]"
    members = []
    for _ in range(source.int_in_range(0, 6)):
        if source.int_in_range(0, 3) == 0:
            key = f"secret_{source.int_in_range(0, 3)}"
        elif source.int_in_range(0, 5) == 0:
            key = source.text(source.int_in_range(0, 12))
        else:
            key = KEYS[source.pick(KEYS)]
        child = f"{path}.{key}" if path else key
        members.append(_string(key) + b":" + _value(source, child, depth + 1, budget))
    return b"{" + b",".join(members) + b"}"


def build_document(source: Source) -> bytes:
    """One document: usually an object at the top, as devices send; sometimes anything."""
    top = source.int_in_range(0, 9)
    budget = [200]
    if top == 0:
        return _value(source, "", 0, budget)
    body = _value(source, "", 8, [0]) if top == 1 else b""
    members = []
    for _ in range(source.int_in_range(1, 8)):
        key = KEYS[source.pick(KEYS)] if source.int_in_range(0, 2) else "secret_top"
        members.append(_string(key) + b":" + _value(source, key, 1, budget))
    return body or (b"{" + b",".join(members) + b"}")
