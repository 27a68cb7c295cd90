"""A message body, parsed at most once and shared by every recipient's grants.

``orjson`` parses fast but reads ``23.20`` as ``23.2`` and refuses ``1e999``; the literal-keeping
parse of ``policies.numbers`` is taken only when something is released and the fast parse would
not write every number back unchanged. The states say what the body turned out to be.
"""

from __future__ import annotations

import contextlib

import orjson
from pydantic import JsonValue

from policies.listing import Listed, collect
from policies.numbers import is_number_error, loads_exact, round_trips

__all__ = ["BAD_UTF8", "JSON", "TEXT", "UNPARSED", "WHOLE", "Parsed"]

UNPARSED, JSON, TEXT, BAD_UTF8 = 0, 1, 2, 3
WHOLE = ("$payload",)


class Parsed:
    """The message body, parsed at most once and shared by every recipient's grants."""

    __slots__ = ("_exact", "_leaves", "raw", "root", "state")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.state = UNPARSED
        # JSON once parsed (numbers that would not write back unchanged as ``numbers.Literal``,
        # a float), the text itself when the body is not JSON; None before the parse.
        self.root: JsonValue = None
        self._exact: JsonValue = None
        self._leaves: Listed[str] | None = None

    @classmethod
    def decoded(cls, value: JsonValue) -> Parsed:
        """A body read by other means (a Sparkplug payload's metrics), as JSON of its own."""
        parsed = cls(orjson.dumps(value))
        parsed.root = parsed._exact = value
        parsed.state = JSON
        return parsed

    def parse(self) -> int:
        if self.state == UNPARSED:
            try:
                self.root = orjson.loads(self.raw)
                self.state = JSON
            except orjson.JSONDecodeError as exc:
                try:
                    text = self.raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.state = BAD_UTF8
                    return self.state
                self.root, self.state = text, TEXT
                if is_number_error(exc):  # valid JSON orjson cannot hold (1e999): keep literals
                    with contextlib.suppress(ValueError, RecursionError):
                        self._exact = self.root = loads_exact(text)
                        self.state = JSON
        return self.state

    def exact(self) -> JsonValue:
        """The body with every number as its literal (only once something is released); the
        fast parse itself when every number in it writes back unchanged (the common case)."""
        if self._exact is None:
            if self._writes_back() or round_trips(self.raw):
                self._exact = self.root
            else:
                self._exact = loads_exact(self.raw.decode("utf-8"))
        return self._exact

    def _writes_back(self) -> bool:
        """True when orjson writes the fast parse back as the very bytes that arrived: then so
        is every number in it (the same bytes hold the same tokens). Compact JSON, as most
        firmware sends it, is answered by one dump, a tenth of what ``round_trips`` scans."""
        if self.state != JSON or self._exact is not None:
            return False
        try:
            return orjson.dumps(self.root) == self.raw
        except TypeError:  # orjson.JSONEncodeError: nested deeper than it writes (255 levels)
            return False

    def leaves(self) -> Listed[str]:
        """Every leaf path of the body, listed up to the caps of ``policies.listing``."""
        if self._leaves is None:
            self._leaves = Listed()
            if self.state == JSON:
                collect(self.root, "", self._leaves)
            else:
                self._leaves.add(WHOLE[0], len(WHOLE[0]))
        return self._leaves
