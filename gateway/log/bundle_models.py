"""The bundle's JSON lines as typed models, one per line type (``gateway/log/SPEC.md`` §6).

A line is first proven to be its own RFC 8785 form with exactly its type's fields
(``gateway.log.bundle_lines._line``); the model then checks each field's type and shape --
strings are strings, integers are non-negative and at most 2^53 - 1, hex is lower case and of
its size -- and hands the reader bytes, not text to decode again. A field that does not hold
is :class:`UnusableInput` naming the line and the field (``bundle line 1: start_hashes[2]:
expected 32 bytes in lower-case hex, found 'AB…'``), so an installer knows where to look.

The exporter (``gateway.log.bundle``) builds its lines with the same models, so what is
written and what is read are one definition.

The bulk ``entries`` and ``content`` lines are read without a JSON parser when they are in
their fixed form (``bundle_lines._bulk_line``); their models check the same lines when they
are not, before the reader refuses or accepts them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
)

from gateway.log.jcs import MAX_SAFE_INTEGER, canonical
from gateway.log.verdict import UnusableInput

__all__ = [
    "AnyLine",
    "BodyLine",
    "CheckpointLine",
    "ContentLine",
    "EntriesLine",
    "HeaderLine",
    "JsonLine",
    "NamesLine",
    "TextLine",
    "line_model",
]


def _shown(value: object) -> str:
    """A hostile value quoted short enough for an error message."""
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


_LOWER_HEX_32 = re.compile(r"[0-9a-f]{64}")


def _hex32(value: object) -> bytes:
    """32 bytes written as 64 lower-case hex digits (SPEC §6: all hex is lower case), or the
    32 bytes themselves when the exporter builds a line (JSON never parses to bytes)."""
    if isinstance(value, bytes) and len(value) == 32:
        return value
    # fullmatch, not fromhex alone: fromhex also reads upper case and spaces, both refused
    if isinstance(value, str) and _LOWER_HEX_32.fullmatch(value):
        return bytes.fromhex(value)
    raise ValueError(f"expected 32 bytes in lower-case hex, found {_shown(value)}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {type(value).__name__}")
    return value


def _count(value: object) -> int:
    # bool is an int to Python, not to JSON; a number past 2^53 - 1 is not exact in JSON
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"expected a non-negative integer, found {_shown(value)}")
    return value


Hex32 = Annotated[bytes, PlainValidator(_hex32), PlainSerializer(bytes.hex, return_type=str)]
Text = Annotated[str, PlainValidator(_text)]
Count = Annotated[int, PlainValidator(_count)]


class JsonLine(BaseModel):
    """What every line shares: no field beyond its type's, nothing changed once read."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def line(self) -> bytes:
        """The line as the exporter writes it: its RFC 8785 form (hex for bytes), newline."""
        return canonical(self.model_dump()) + b"\n"


class HeaderLine(JsonLine):
    t: Literal["header"]
    format: Text
    origin: Text
    customer: Text
    key: Hex32  # the public key the log was created under
    start: Count  # leaves dropped before the first entry in the file
    start_hashes: list[Hex32] = Field(max_length=64)  # their compact range: one per set bit


class TextLine(JsonLine):
    t: Literal["text"]
    digest: Hex32
    text: Text


class BodyLine(JsonLine):
    t: Literal["body"]
    digest: Hex32
    body: Text  # the body's exact JCS bytes, as a JSON string


class NamesLine(JsonLine):
    t: Literal["names"]
    commitment: Hex32
    salt: Hex32
    doc: Text  # the names document's exact JCS bytes, as a JSON string


class EntriesLine(JsonLine):
    t: Literal["entries"]
    first: Count
    data: Text  # base64, decoded (strictly) by the reader


class ContentLine(JsonLine):
    t: Literal["content"]
    data: Text


class CheckpointLine(JsonLine):
    t: Literal["checkpoint"]
    note: Text


AnyLine = HeaderLine | TextLine | BodyLine | NamesLine | EntriesLine | ContentLine | CheckpointLine
_MODELS: dict[str, type[AnyLine]] = {
    "header": HeaderLine,
    "text": TextLine,
    "body": BodyLine,
    "names": NamesLine,
    "entries": EntriesLine,
    "content": ContentLine,
    "checkpoint": CheckpointLine,
}
FIELDS: dict[str, frozenset[str]] = {t: frozenset(m.model_fields) for t, m in _MODELS.items()}


def line_model(kind: str, line: dict[str, object], number: int) -> AnyLine:
    """``line`` (of a known type ``kind``, with exactly its fields) as its typed model."""
    try:
        return _MODELS[kind].model_validate(line)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UnusableInput(f"bundle line {number}: {where.lstrip('.')}: {message}") from exc
