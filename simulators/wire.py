"""JSON as device firmware writes it, literals included.

Firmware prints numbers with a fixed number of decimals (``4.000``, ``1.00``, ``23.20``) and some
puts a space after a comma; ``json.dumps`` cannot reproduce either, and the gateway must be
tested against the bytes real devices send. ``Fixed`` marks a number to print with exact digits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Fixed", "JsonValue", "dumps"]


@dataclass(frozen=True, slots=True)
class Fixed:
    """A number printed with exactly ``digits`` decimals, as firmware's ``printf("%.3f")``."""

    value: float
    digits: int

    def __str__(self) -> str:
        return f"{self.value:.{self.digits}f}"


JsonValue = (
    None | bool | int | float | str | Fixed | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
)


def _encode(value: JsonValue, comma: str, colon: str, out: list[str]) -> None:
    if value is None or isinstance(value, bool | int | float | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Fixed):
        out.append(str(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(comma)
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(colon)
            _encode(item, comma, colon, out)
        out.append("}")
    else:
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(comma)
            _encode(item, comma, colon, out)
        out.append("]")


def dumps(value: JsonValue, *, spaced: bool = False) -> bytes:
    """UTF-8 JSON, compact (``{"a":1,"b":2}``) or spaced as ``mosquitto_pub`` users type it."""
    out: list[str] = []
    _encode(value, ", " if spaced else ",", ": " if spaced else ":", out)
    return "".join(out).encode()
