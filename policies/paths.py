"""Field selection: a grant's paths compiled into a trie, walked once per message in input order.

Path syntax (see ``policies.model``): ``a.b`` nested keys, ``*`` any one key, ``key[]`` every
element of the array under ``key``. Concrete paths reported in decisions name real keys and
indices: ``sensors.a.temperature``, ``readings[2].value``; the whole body is ``$payload``.

The walk visits the input once, keeps keys in input order, records leaf by leaf what was
shared, altered and withheld (a kept object lists each leaf inside it), and never recurses
deeper than the grant's own paths (input nesting is walked iteratively, see ``policies.listing.leaves``).
Arrays keep only the elements something was released from, so paths always name input indices.

Specificity (the one rule for which of a grant's paths decides a leaf): of all the paths that
name the leaf or one of its parents, the most specific decides. Compare two such paths level
by level from the top: at the first level where they differ, a literal key beats ``*``; when
one path ends where the other goes on, the deeper one wins. So a literal key beats ``*`` at
every depth, a deeper rule beats a shallower one, and the order in which the grant lists its
fields never matters. With ``"*": keep`` beside ``driver.name: pseudonymise``, ``driver.name``
leaves pseudonymised and ``driver.id`` raw (``*`` names ``driver``; ``driver.name`` is deeper);
with ``driver: pseudonymise`` beside ``"*.name": keep``, ``driver.name`` is pseudonymised
(``driver`` beats ``*`` at the first level). A rule on an object covers what no deeper path
names. ``specificity`` spells the order out for two paths; the walk below implements it with
candidate lists ordered best first.

Every key, value, size and depth is the device's choice, so what a walk *records* is bounded
whatever the message: the paths it names and the lists it keeps are ``policies.listing``'s (cut
keys and paths, lists up to ``LIST_CHARS`` characters and the rest counted); deciding,
explaining and logging a message costs time linear in its size and a bounded number of bytes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

from pydantic import JsonValue

from policies.decision import Alteration, Reason
from policies.listing import (
    LIST_CHARS,
    MAX_KEY_CHARS,
    MAX_PATH_CHARS,
    Listed,
    child,
    collect,
    element,
)
from policies.numbers import Literal
from policies.treatments import TreatmentFailed, coarsen

__all__ = [
    "MAX_PROBLEMS",
    "NOTHING",
    "JsonObject",
    "Node",
    "Release",
    "Released",
    "Rule",
    "insert",
    "release_root",
    "specificity",
    "under_element",
    "under_key",
]


_CACHE_LIMIT = 4096  # distinct concrete paths remembered per rule (array indices vary)
MAX_PROBLEMS = 8  # field problems (treatment failures) kept per decision; the rest are counted


class _Nothing(enum.Enum):
    """Nothing released at this path: a walk's answer beside any JSON value. An enum member,
    so ``got is not NOTHING`` tells the type checker the rest is JSON; compared by identity
    as before, so the walk costs the same."""

    NOTHING = "NOTHING"

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Final = _Nothing.NOTHING  # sentinel: nothing released at this path

# A device's JSON as parsed (``policies.body``): every key and value is the device's choice, so
# the type says only "JSON", never a shape; numbers may be ``policies.numbers.Literal`` (a
# float). Annotations only: the walk checks ``type(value) is dict`` itself and nothing
# validates against these at run time (the policy engine runs per message).
JsonObject: TypeAlias = "dict[str, JsonValue]"
Released: TypeAlias = "JsonValue | _Nothing"  # what a walk gives back for one value
_NONE: Mapping[str, int] = {}  # never written to (as ``policies.verdicts``' own)


class Release:
    """Scratch record of one grant applied to one message."""

    __slots__ = (
        "altered",
        "key",
        "problems",
        "problems_more",
        "raised_by",
        "shared",
        "trace",
        "withheld",
    )

    def __init__(self, key: bytes | None, *, trace: bool = False) -> None:
        self.key = key
        # (path, the rule that decided it), only when asked (policies.semantics)
        self.trace: list[tuple[str, Rule]] | None = [] if trace else None
        # Other grants whose more protective rule decided a leaf of this release (policies.combine)
        self.raised_by: set[str] = set()
        self.shared: Listed[str] = Listed()
        self.altered: Listed[Alteration] = Listed()
        self.withheld: Listed[str] = Listed()
        self.problems: dict[str, Reason] = {}
        self.problems_more = 0  # problems beyond MAX_PROBLEMS, only counted

    def fail(self, path: str, value: object, treatment: str, problem: str) -> _Nothing:
        reason = Reason(
            "treatment_failed", {"field": path, "treatment": treatment, "problem": problem}
        )
        return self.refuse(path, value, reason)

    def refuse(self, path: str, value: object, reason: Reason) -> _Nothing:
        """Withhold ``value`` at ``path`` (a field the grant names) and say why."""
        collect(value, path, self.withheld)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems[path] = reason
        else:
            self.problems_more += 1
        return NOTHING

    def omitted(self) -> Mapping[str, int]:
        """How many entries each list left out (only lists that left some out)."""
        if not (self.problems_more or self.shared.more or self.altered.more or self.withheld.more):
            return _NONE  # the common case, shared by every decision (read only)
        counts = {
            "shared": self.shared.more,
            "altered": self.altered.more,
            "withheld": self.withheld.more,
            "field_reasons": self.problems_more,
        }
        return {name: n for name, n in counts.items() if n}


class Rule:
    """A terminal treatment at a path. ``fn(value, parent, release) -> released value``."""

    __slots__ = ("_alterations", "detail", "fn", "grant", "level", "name", "source")

    def __init__(
        self,
        name: str,
        detail: str,
        fn: Callable[[JsonValue, JsonObject | None, Release], JsonValue] | None = None,
        *,
        source: str = "",
        level: float = 0.0,
        grant: str = "",
    ) -> None:
        self.name = name  # keep, pseudonymise, round, coarsen, truncate (aggregate: a shadow)
        self.detail = detail
        self.fn = fn
        self.source = source  # the grant's field path this rule comes from (explanations)
        # How coarse, between rules of one name (policies.combine): a rounding step, a grid in
        # metres, a truncation unit's rank. Larger protects more.
        self.level = level
        self.grant = grant  # the id of the grant this rule belongs to
        # Alterations repeat per path; creating frozen dataclasses is the hot path's main cost.
        self._alterations: dict[str, Alteration] = {}

    def alteration(self, path: str) -> Alteration:
        found = self._alterations.get(path)
        if found is None:
            found = Alteration(path, self.name, self.detail)
            if len(self._alterations) < _CACHE_LIMIT:
                self._alterations[path] = found
        return found

    def apply(
        self, value: JsonValue, path: str, parent: JsonObject | None, rel: Release
    ) -> Released:
        if rel.trace is not None:
            rel.trace.append((path, self))
        if self.fn is None:  # keep
            if type(value) is Literal and not math.isfinite(value):
                # 1e999 is valid JSON, but beyond a double: most recipients' software (orjson,
                # JavaScript, databases) cannot read it. Released as written it would break them;
                # changed it would not be kept. So it stays here, and the customer is told.
                return rel.refuse(path, value, Reason("out_of_range", {"field": path}))
            if path == "$payload":
                # The whole payload kept: released as the device sent it, and said so as one
                # thing ("the whole content, unchanged"), never as a list of its device-chosen keys.
                rel.shared.add(path, len(path))
            elif type(value) is dict or type(value) is list:
                collect(value, path, rel.shared)  # a kept object: each leaf is shared
            else:
                rel.shared.add(path, len(path))
            return value
        try:
            out = self.fn(value, parent, rel)
        except TreatmentFailed as exc:
            return rel.fail(path, value, self.name, exc.problem)
        rel.altered.add(self.alteration(path), len(path) + len(self.name) + len(self.detail))
        return out


def coarsen_rule(grid_m: float, partner: str, is_lat: bool, source: str = "") -> Rule:
    """The half of a lat/lon pair at this key; ``partner`` is the sibling key of the other."""

    def fn(value: JsonValue, parent: JsonObject | None, rel: Release) -> JsonValue:
        if parent is None or partner not in parent:
            raise TreatmentFailed("not_a_location")
        other = parent[partner]
        lat, lon = (value, other) if is_lat else (other, value)
        out_lat, out_lon = coarsen(lat, lon, grid_m)
        return out_lat if is_lat else out_lon

    return Rule("coarsen", f"{grid_m:g} m", fn, source=source, level=grid_m)


class Node:
    __slots__ = ("elem", "keys", "rule", "star")

    def __init__(self) -> None:
        self.keys: dict[str, Node] = {}
        self.star: Node | None = None
        self.elem: Node | None = None  # the array's elements, for ``key[]``
        self.rule: Rule | None = None


def insert(root: Node, path: str, rule: Rule) -> None:
    """Add ``path`` (already validated) with its terminal rule; a repeated path is an error."""
    node = root
    for segment in path.split("."):
        name = segment.rstrip("[]")
        arrays = (len(segment) - len(name)) // 2
        if name == "*":
            node.star = node.star or Node()
            node = node.star
        else:
            node = node.keys.setdefault(name, Node())
        for _ in range(arrays):
            node.elem = node.elem or Node()
            node = node.elem
    if node.rule is not None:
        raise ValueError(f"{path!r} is named twice (directly or by a coarsen pair)")
    node.rule = rule


def specificity(path: str) -> tuple[int, ...]:
    """The rank of a grant's field path: of two paths naming the same leaf, the one with the
    greater rank decides. One number per level (a literal key 2, ``*`` 1, each ``[]`` 2),
    compared level by level: a literal key beats ``*`` at every depth, and a path that goes on
    where the other ends (a deeper rule) beats it."""
    rank: list[int] = []
    for segment in path.split("."):
        name = segment.rstrip("[]")
        rank.append(1 if name == "*" else 2)
        rank.extend([2] * ((len(segment) - len(name)) // 2))
    return tuple(rank)


def _leaf(node: Node) -> bool:
    return not node.keys and node.star is None and node.elem is None


def _under_key(items: list[Node | Rule], key: str) -> list[Node | Rule]:
    """The candidates for ``key`` of a dict the ``items`` stand at, best first (see ``specificity``)."""
    out: list[Node | Rule] = []
    for item in items:
        if type(item) is Rule:
            out.append(item)
            return out
        node: Node = item  # type: ignore[assignment]
        found = node.keys.get(key)
        if found is not None:
            out.append(found.rule if found.rule is not None and _leaf(found) else found)
        star = node.star
        if star is not None:
            out.append(star.rule if star.rule is not None and _leaf(star) else star)
        if node.rule is not None:
            out.append(node.rule)
            return out
    return out


def _under_element(items: list[Node | Rule]) -> list[Node | Rule]:
    """The candidates for each element of an array the ``items`` stand at, best first."""
    out: list[Node | Rule] = []
    for item in items:
        if type(item) is Rule:
            out.append(item)
            return out
        node: Node = item  # type: ignore[assignment]
        elem = node.elem
        if elem is not None:
            out.append(elem.rule if elem.rule is not None and _leaf(elem) else elem)
        if node.rule is not None:
            out.append(node.rule)
            return out
    return out


def _release(
    value: JsonValue,
    items: list[Node | Rule],
    path: str,
    parent: JsonObject | None,
    rel: Release,
) -> Released:
    """Release ``value`` at ``path`` under the candidate rules ``items``, best first.

    The first candidate decides: a rule applies to the whole value; a node whose deeper paths
    fit the value's shape (keys or ``*`` for an object, ``[]`` for an array) descends into it,
    carrying every later candidate along for what its own paths do not name; a node that does
    not fit gives way to its own rule, or else to the next candidate."""
    kind = type(value)
    for index, item in enumerate(items):
        if type(item) is Rule:
            return item.apply(value, path, parent, rel)
        node: Node = item  # type: ignore[assignment]
        if kind is dict and value and (node.keys or node.star is not None):
            out = _walk(value, items[index:], path, rel)  # type: ignore[arg-type]
            return out if out else NOTHING
        if kind is list and value and node.elem is not None:
            inner = _under_element(items[index:])
            released: list[JsonValue] = []
            elements: list[JsonValue] = value  # type: ignore[assignment]
            for position, item_value in enumerate(elements):
                got = _release(item_value, inner, element(path, position), None, rel)
                if got is not NOTHING:
                    released.append(got)
            return released if released else NOTHING
        if node.rule is not None:
            return node.rule.apply(value, path, parent, rel)
    collect(value, path, rel.withheld)
    return NOTHING


def _path(parent: str, key: str) -> str:
    """``child(parent, key)``, with the common short case first."""
    if len(key) <= MAX_KEY_CHARS and len(parent) + len(key) < MAX_PATH_CHARS:
        return f"{parent}.{key}" if parent else key
    return child(parent, key)


def _listed(path: str) -> tuple[str, int]:
    """A leaf's path as ``Listed.add`` takes it (``collect`` of a scalar)."""
    leaf = path or "$payload"
    return leaf, len(leaf)


def _walk(obj: JsonObject, items: list[Node | Rule], parent: str, rel: Release) -> JsonObject:
    out: JsonObject = {}
    withheld = rel.withheld
    shared = rel.shared
    # The common case, a grant naming literal keys only: one dict lookup per key.
    first = items[0]
    single: Node | None = None
    if len(items) == 1 and type(first) is Node and first.star is None and first.rule is None:
        single = first
    # A kept scalar is listed here without ``Rule.apply`` (its keep branch, inlined: three calls
    # per kept field were a third of a walk), unless the walk is traced for ``policies.semantics``.
    inline = rel.trace is None
    for key, value in obj.items():
        kind = type(value)
        scalar = kind is not dict and kind is not list
        if single is not None:
            node = single.keys.get(key)
            if node is None:
                if scalar:  # one leaf: listed (or, once the list is full, only counted)
                    if withheld.chars >= LIST_CHARS:
                        withheld.total += 1  # full: counted, no path built
                    elif not parent and key and len(key) <= MAX_KEY_CHARS:
                        withheld.total += 1  # a short top-level key is its own path (inlined)
                        withheld.items.append(key)
                        withheld.chars += len(key)
                    else:
                        withheld.add(*_listed(child(parent, key)))
                else:
                    collect(value, child(parent, key), withheld)
                continue
            rule = node.rule
            if rule is not None and not node.keys and node.star is None and node.elem is None:
                # A literal key naming a rule: it decides the whole value (``_release``'s first
                # step, without building its candidate list).
                path = key if not parent and len(key) <= MAX_KEY_CHARS else _path(parent, key)
                if inline and scalar and rule.fn is None and kind is not Literal:
                    shared.total += 1  # ``Listed.add``
                    if shared.chars < LIST_CHARS:
                        shared.items.append(path)
                        shared.chars += len(path)
                    out[key] = value
                    continue
                got = rule.apply(value, path, obj, rel)
                if got is not NOTHING:
                    out[key] = got
                continue
            matched: list[Node | Rule] = [node]
        else:
            matched = _under_key(items, key)
            if not matched:
                collect(value, child(parent, key), withheld)
                continue
        got = _release(value, matched, _path(parent, key), obj, rel)
        if got is not NOTHING:
            out[key] = got
    return out


def release_root(root: object, trie: Node, rel: Release) -> JsonObject:
    """Apply a grant's field trie to a parsed payload; an empty dict means nothing released.

    Which rule decides a leaf is ``specificity``: of all the grant's paths that name the leaf
    or one of its parents, the most specific one."""
    if type(root) is not dict:
        collect(root, "", rel.withheld)
        return {}
    if not root:
        return {}
    return _walk(root, [trie], "", rel)


# The candidate steps, for the walk that honours other grants' rules (``policies.combine``).
under_key = _under_key
under_element = _under_element
