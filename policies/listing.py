"""What a decision lists of a device's fields: each path and each list bounded.

A decision says which fields of a message were shared, altered and withheld, and the
explanation, the log entry and the customer's report repeat those lists. Every key, size and
depth is the device's choice, so here a key longer than ``MAX_KEY_CHARS`` is shown cut with "…",
a path longer than ``MAX_PATH_CHARS`` keeps its start, "…" and its last key (``child``,
``element``), and each list keeps paths only until ``LIST_CHARS`` characters, counting the rest
(``Listed``). Without this one 122 KB message of 200 nested 250-character keys over 8,000 leaves
made three 400 MB strings (every leaf's path repeats the whole chain).

The grant's field trie and its walk (``policies.paths``) decide what leaves; this module only
names and counts. Pure: no I/O.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = [
    "LIST_CHARS",
    "MAX_KEY_CHARS",
    "MAX_PATH_CHARS",
    "Listed",
    "child",
    "collect",
    "element",
    "leaves",
]

MAX_KEY_CHARS = 40  # longer keys are shown as their first 39 characters and "…"
MAX_PATH_CHARS = 120  # longer paths keep their first _HEAD characters, "…" and the last key
LIST_CHARS = 600  # characters of paths one list keeps; later paths are only counted
_HEAD = MAX_PATH_CHARS - MAX_KEY_CHARS - 2


def child(prefix: str, key: str) -> str:
    """The path of ``key`` under ``prefix`` ("" at the top), at most ``MAX_PATH_CHARS`` long:
    a longer one keeps its first ``_HEAD`` characters, "…" and its last keys."""
    if len(key) > MAX_KEY_CHARS:
        key = key[: MAX_KEY_CHARS - 1] + "…"
    if not prefix:
        return key
    path = f"{prefix}.{key}"
    if len(path) <= MAX_PATH_CHARS:
        return path
    # prefix[:_HEAD] is the start of the real path: elided forms keep the same first _HEAD chars.
    return f"{prefix[:_HEAD]}….{key}"


def element(prefix: str, index: int) -> str:
    """The path of element ``index`` of the array at ``prefix``, at most ``MAX_PATH_CHARS``."""
    path = f"{prefix or '$payload'}[{index}]"
    if len(path) <= MAX_PATH_CHARS:
        return path
    return f"{prefix[:_HEAD]}…[{index}]"


T = TypeVar("T")


class Listed(Generic[T]):
    """Paths (or alterations) in input order until ``LIST_CHARS`` characters; the rest counted.

    A decision lists what was shared, altered and withheld; a device choosing 8,000 keys must
    not make that list (nor the explanation and log entry built from it) 8,000 long. ``more``
    is how many were left out, and the explanation says so ("and 7,981 more fields").
    """

    __slots__ = ("chars", "items", "total")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.chars = 0
        self.total = 0

    @property
    def more(self) -> int:
        return self.total - len(self.items)

    def add(self, item: T, size: int) -> None:
        self.total += 1
        if self.chars < LIST_CHARS:
            self.items.append(item)
            self.chars += size


def leaves(value: object, path: str) -> list[str]:
    """Concrete paths of every scalar (and empty container) under ``value``, iteratively.

    Unbounded in count (for checking a released payload); decisions use ``collect``."""
    out: Listed[str] = Listed()
    _collect(value, path, out, bounded=False)
    return out.items


def collect(value: object, path: str, into: Listed[str]) -> None:
    """Add the leaf paths under ``value`` to ``into``; once it is full, only count them."""
    _collect(value, path, into, bounded=True)


def _collect(value: object, path: str, into: Listed[str], *, bounded: bool) -> None:
    # The hot path of every withheld field: the short-path case is inlined (no call to child).
    items = into.items
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if bounded and into.chars >= LIST_CHARS:
            into.total += _count(item)  # no path strings are built for what is not listed
        elif type(item) is dict and item:
            room = MAX_PATH_CHARS - len(where) - 1
            stack.extend(
                (
                    v,
                    (f"{where}.{k}" if where else k)
                    if len(k) <= MAX_KEY_CHARS and len(k) < room
                    else child(where, k),
                )
                for k, v in reversed(item.items())
            )
        elif type(item) is list and item:
            stack.extend((v, element(where, i)) for i, v in reversed(list(enumerate(item))))
        else:
            leaf = where or "$payload"
            into.total += 1
            items.append(leaf)
            into.chars += len(leaf)


def _count(value: object) -> int:
    """How many leaves ``leaves`` would list under ``value``, without building their paths."""
    n = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict and item:
            stack.extend(item.values())
        elif type(item) is list and item:
            stack.extend(item)
        else:
            n += 1
    return n
