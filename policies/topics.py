"""MQTT topic patterns with named captures, their overlap test, and upstream topic templates.

A pattern is MQTT syntax plus named captures: ``owntracks/{user}/{phone}`` matches one level per
``{name}`` and remembers it, ``+`` matches one level without remembering it, a trailing ``#``
matches the rest (including nothing, as in MQTT). A template (``vans/{device}/{user}``) builds
the topic a recipient sees from the customer, device, stream, the raw ``{topic}`` and captures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["BUILTIN_PLACEHOLDERS", "TopicPattern", "TopicTemplate", "patterns_overlap"]

BUILTIN_PLACEHOLDERS = frozenset({"customer", "device", "stream", "topic"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _is_wild(level: str) -> bool:
    return level == "+" or level.startswith("{")


class TopicPattern:
    """One compiled device topic pattern."""

    __slots__ = ("captures", "levels", "literal", "pattern", "regex")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.levels = tuple(pattern.split("/"))
        self.captures = tuple(lvl[1:-1] for lvl in self.levels if lvl.startswith("{"))
        self.literal = not any(_is_wild(lvl) or lvl == "#" for lvl in self.levels)
        parts: list[str] = []
        for index, level in enumerate(self.levels):
            sep = "/" if index else ""
            if level == "#":
                parts.append(f"(?:{sep}.*)?" if index else ".*")
            elif level == "+":
                parts.append(sep + "[^/]*")
            elif level.startswith("{"):
                parts.append(f"{sep}(?P<{level[1:-1]}>[^/]*)")
            else:
                parts.append(sep + re.escape(level))
        self.regex = re.compile("".join(parts), re.DOTALL)

    @property
    def first_level(self) -> str | None:
        """The first level when it is literal (used to bucket patterns), else None."""
        first = self.levels[0]
        return None if _is_wild(first) or first == "#" else first

    def match(self, topic: str) -> dict[str, str] | None:
        if self.literal:
            return {} if topic == self.pattern else None
        found = self.regex.fullmatch(topic)
        return None if found is None else found.groupdict()


def patterns_overlap(a: str, b: str) -> bool:
    """True when some topic matches both patterns."""
    left, right = a.split("/"), b.split("/")
    index = 0
    while True:
        if index < len(left) and left[index] == "#":
            return True
        if index < len(right) and right[index] == "#":
            return True
        if index == len(left) or index == len(right):
            return len(left) == len(right)
        x, y = left[index], right[index]
        if not (_is_wild(x) or _is_wild(y) or x == y):
            return False
        index += 1


class TopicTemplate:
    """``ovens/{customer}/{device}/{stream}`` -> a concrete upstream topic."""

    __slots__ = ("names", "parts", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        self.parts: list[tuple[bool, str]] = []  # (is_placeholder, text)
        position = 0
        for found in _PLACEHOLDER.finditer(template):
            if found.start() > position:
                self.parts.append((False, template[position : found.start()]))
            self.parts.append((True, found.group(1)))
            position = found.end()
        if position < len(template):
            self.parts.append((False, template[position:]))
        rest = _PLACEHOLDER.sub("", template)
        if "{" in rest or "}" in rest:
            raise ValueError(f"bad placeholder in {template!r}: expected {{name}}")
        self.names = frozenset(text for is_name, text in self.parts if is_name)

    @property
    def captures(self) -> frozenset[str]:
        return self.names - BUILTIN_PLACEHOLDERS

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(values[text] if is_name else text for is_name, text in self.parts)
