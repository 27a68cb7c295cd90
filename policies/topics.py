"""MQTT topic patterns with named captures (the one dialect), their overlap test, and templates.

A pattern is MQTT syntax plus named captures. Every place that reads a pattern (the policy
engine, device profiles, the managed broker's ACL, erasure's retained-message sweep) parses it
here, so a pattern means the same thing everywhere:

- a literal level matches itself (dots and other characters are literal);
- ``+`` matches one level, without remembering it;
- ``{name}`` matches a non-empty run of characters without ``/`` and remembers it: filling a
  whole level it matches one non-empty level (a device on ``owntracks//phone`` has no user to
  name, so its message matches no pattern and is withheld as an unknown topic);
- a level mixing text and captures (``{app}@{tenant}`` as The Things Stack writes its topics,
  ``openevse-{suffix}``; two captures need text between them) matches one level whose text
  fits, the earlier captures as short as possible, in time linear in the level's length
  (``_Mixed``: as a backtracking expression, a device's topic could stall the gateway);
- a trailing ``#`` matches the rest, including nothing (as in MQTT).

A topic under ``devices/<customer>/`` lies in that customer's namespace (``namespace_owner``),
where the gateway's registry puts the devices it registers. A pattern whose first level is a
wildcard or capture (device families need them: Shelly's ``{id}/events/rpc``) never takes such a
topic of another customer: ``policies.routes`` gives it to the namespace's customer, so the two
patterns do not compete for it (``claims_overlap``), whichever was written first.

``to_mqtt_filter()`` is the broker's view: every level that is not literal becomes ``+``.
A template (``vans/{device}/{user}``) builds the topic a recipient sees from the customer,
device, stream, the raw ``{topic}`` and captures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "NAMESPACE",
    "TopicPattern",
    "TopicTemplate",
    "claims_overlap",
    "namespace_owner",
    "pattern_namespace",
    "patterns_overlap",
    "precedence",
]

NAMESPACE = "devices"  # a customer's namespace is devices/<customer>/
BUILTIN_PLACEHOLDERS = frozenset({"customer", "device", "stream", "topic"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def namespace_owner(topic: str) -> str | None:
    """The customer whose namespace ``topic`` lies in (``devices/<customer>/…``), or None."""
    first, _, rest = topic.partition("/")
    if first != NAMESPACE or not rest:
        return None
    return rest.partition("/")[0]


def pattern_namespace(pattern: str) -> str | None:
    """The customer whose namespace every topic of ``pattern`` lies in (``devices/<customer>/…``
    with a fixed second level), or None."""
    second = namespace_owner(pattern)
    return None if second is None or second == "#" or _is_wild(second) else second


def claims_overlap(customer_a: str, pattern_a: str, customer_b: str, pattern_b: str) -> bool:
    """Whether a topic could belong to both customers' patterns: they overlap, unless one lies
    in its own customer's namespace and the other, another customer's, has a wildcard first
    level (the topics they share are the namespace's customer's alone; module text)."""
    if not patterns_overlap(pattern_a, pattern_b):
        return False
    if customer_a == customer_b:
        return True
    for own, mine, wild in ((customer_a, pattern_a, pattern_b), (customer_b, pattern_b, pattern_a)):
        if pattern_namespace(mine) == own and TopicPattern(wild).first_level is None:
            return False
    return True


def precedence(pattern: str) -> tuple[int, ...]:
    """How specific ``pattern`` is, comparable across patterns: level by level, a literal level
    before one mixing text and captures, before ``+`` or a capture, before the pattern's end,
    before ``#``. Of two overlapping patterns the greater is the more literal one at the first
    level where they differ (``a/b`` before ``a/b/#``, which also matches ``a/b``). A cluster
    ranks overlapping patterns of customers on different instances by it, the greatest taking
    the topic, so every instance ranks them alike from the policy files alone."""
    return (*(_specificity(level) for level in pattern.split("/")), 1)


def _specificity(level: str) -> int:
    if level == "#":
        return 0
    if level == "+" or (_is_wild(level) and not _PLACEHOLDER.sub("", level)):
        return 2
    return 3 if _is_wild(level) else 4


def _is_wild(level: str) -> bool:
    """True when a level matches more than one literal level (``+``, a capture, a mixed level)."""
    return level == "+" or "{" in level


def _is_mixed(level: str) -> bool:
    """A level of text and captures, or of several captures (not one whole-level capture)."""
    return "{" in level and not (
        level.startswith("{") and level.endswith("}") and _PLACEHOLDER.fullmatch(level)
    )


def _level_regex(level: str) -> str:
    """The regular expression one non-``#`` level matches (without separators)."""
    if level == "+":
        return "[^/]*"
    if level.startswith("{") and level.endswith("}") and _PLACEHOLDER.fullmatch(level) is not None:
        return f"(?P<{level[1:-1]}>[^/]+)"
    parts: list[str] = []
    position = 0
    for found in _PLACEHOLDER.finditer(level):
        parts.append(re.escape(level[position : found.start()]))
        parts.append(f"(?P<{found.group(1)}>[^/]+?)")
        position = found.end()
    parts.append(re.escape(level[position:]))
    return "".join(parts)


class _Mixed:
    """One level of text and captures (``{app}@{tenant}``), matched in time linear in the
    topic level's length. As a regular expression (``[^/]+?`` per capture) a level of several
    captures backtracks polynomially: ``{a}-{b}-{c}-{d}-{e}`` took seconds on 150 dashes, a
    device's topic blocking the gateway. The captures are as a lazy expression takes them,
    each as short as lets the rest of the level match."""

    __slots__ = ("parts",)

    def __init__(self, level: str) -> None:
        parts: list[tuple[str | None, str]] = []  # (capture name, "") or (None, literal text)
        position = 0
        for found in _PLACEHOLDER.finditer(level):
            if found.start() > position:
                parts.append((None, level[position : found.start()]))
            parts.append((found.group(1), ""))
            position = found.end()
        if position < len(level):
            parts.append((None, level[position:]))
        self.parts = tuple(parts)

    def match(self, level: str, into: dict[str, str]) -> bool:
        parts, n = self.parts, len(level)
        # top[j]: the last position parts[j:] can start matching level[j...] from, -1: none.
        # A capture's rest can start anywhere up to one before its next part's last start; a
        # literal is where it occurs ending by then (captures are never adjacent: validated).
        top = [-1] * len(parts) + [n]
        for j in range(len(parts) - 1, -1, -1):
            name, text = parts[j]
            after = top[j + 1]
            if name is not None:
                top[j] = after - 1 if after >= 1 else -1
            elif j + 1 == len(parts):
                top[j] = n - len(text) if level.endswith(text) else -1
            elif after >= 0:
                top[j] = level.rfind(text, 0, after)
        first_name, first_text = parts[0]
        if top[0] < 0 or (first_name is None and not level.startswith(first_text)):
            return False
        at = 0
        for j, (name, text) in enumerate(parts):
            if name is None:
                at += len(text)
                continue
            if j + 1 == len(parts):
                end = n
            else:
                following = parts[j + 1][1]
                last = j + 2 == len(parts)
                end = n - len(following) if last else level.find(following, at + 1)
            into[name] = level[at:end]
            at = end
        return True


class TopicPattern:
    """One compiled device topic pattern."""

    __slots__ = ("captures", "levels", "literal", "mixed", "pattern", "regex")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.levels = tuple(pattern.split("/"))
        self.captures = tuple(
            found.group(1) for lvl in self.levels for found in _PLACEHOLDER.finditer(lvl)
        )
        self.literal = not any(_is_wild(lvl) or lvl == "#" for lvl in self.levels)
        parts: list[str] = []
        for index, level in enumerate(self.levels):
            sep = "/" if index else ""
            if level == "#":
                parts.append(f"(?:{sep}.*)?" if index else ".*")
            else:
                parts.append(sep + _level_regex(level))
        self.regex = re.compile("".join(parts), re.DOTALL)
        # Levels mixing text and captures: matched level by level (``_Mixed``), not by ``regex``.
        mixed = {i: _Mixed(lvl) for i, lvl in enumerate(self.levels) if _is_mixed(lvl)}
        # Two captures side by side (no text to tell them apart; policies refuse them) keep the
        # expression's own reading.
        apart = all(
            a[0] is None or b[0] is None for m in mixed.values() for a, b in pairwise(m.parts)
        )
        self.mixed = (mixed or None) if apart else None

    @property
    def first_level(self) -> str | None:
        """The first level when it is literal (used to bucket patterns), else None."""
        first = self.levels[0]
        return None if _is_wild(first) or first == "#" else first

    def level_captures(self, level: int) -> tuple[str, ...]:
        """Names of the captures in topic level ``level`` (0-based); () past the last level."""
        if not 0 <= level < len(self.levels):
            return ()
        return tuple(found.group(1) for found in _PLACEHOLDER.finditer(self.levels[level]))

    def to_mqtt_filter(self) -> str:
        """The MQTT subscription/ACL filter covering every topic this pattern matches."""
        return "/".join("+" if _is_wild(level) else level for level in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The captures of ``topic`` ({} when it has none), or None when it does not match."""
        if self.literal:
            return {} if topic == self.pattern else None
        if self.mixed is not None:
            return self._match_levels(topic, self.mixed)
        found = self.regex.fullmatch(topic)
        return None if found is None else found.groupdict()

    def _match_levels(self, topic: str, mixed: dict[int, _Mixed]) -> dict[str, str] | None:
        levels, given = self.levels, topic.split("/")
        rest = levels[-1] == "#"  # matches the remaining levels, none included
        fixed = levels[:-1] if rest else levels
        if len(given) < len(fixed) or (not rest and len(given) != len(fixed)):
            return None
        captures: dict[str, str] = {}
        for index, (want, got) in enumerate(zip(fixed, given, strict=False)):
            if index in mixed:
                if not mixed[index].match(got, captures):
                    return None
            elif want == "+":
                continue
            elif want.startswith("{"):
                if not got:
                    return None
                captures[want[1:-1]] = got
            elif want != got:
                return None
        return captures


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
        if not _levels_overlap(left[index], right[index]):
            return False
        index += 1


def _levels_overlap(x: str, y: str) -> bool:
    """Whether some topic level matches both; a level of text and captures only where its fixed
    text fits (``ttn-{a}`` and ``zigbee-{b}`` share none)."""
    if x == y or not (_is_mixed(x) or _is_mixed(y)):
        return x == y or _is_wild(x) or _is_wild(y)
    for mixed, other in ((x, y), (y, x)):
        if _is_mixed(mixed) and not _is_wild(other):  # the other is literal: does it fit?
            return _Mixed(mixed).match(other, {})
    if not (_is_mixed(x) and _is_mixed(y)):
        return True  # ``+`` or a whole-level capture takes any text
    (x_start, x_end), (y_start, y_end) = _fixed_ends(x), _fixed_ends(y)
    return (x_start.startswith(y_start) or y_start.startswith(x_start)) and (
        x_end.endswith(y_end) or y_end.endswith(x_end)
    )


def _fixed_ends(level: str) -> tuple[str, str]:
    """The text before a level's first capture and after its last."""
    pieces = _PLACEHOLDER.sub("\0", level).split("\0")
    return pieces[0], pieces[-1]


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
