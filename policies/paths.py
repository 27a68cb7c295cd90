"""Field selection: a grant's paths compiled into a trie, walked once per message in input order.

Path syntax (see ``policies.model``): ``a.b`` nested keys, ``*`` any one key, ``key[]`` every
element of the array under ``key``. Concrete paths reported in decisions name real keys and
indices: ``sensors.a.temperature``, ``readings[2].value``; the whole body is ``$payload``.

The walk visits the input once, keeps keys in input order, applies the terminal rule it meets
(a literal key beats ``*``), records what was shared, altered and withheld, and never recurses
deeper than the grant's own paths (input nesting is walked iteratively, see ``leaves``).
Arrays keep only the elements something was released from, so paths always name input indices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policies.decision import Alteration, Reason
from policies.treatments import TreatmentFailed, coarsen

__all__ = ["NOTHING", "Node", "Release", "Rule", "insert", "leaves", "release_root"]


_CACHE_LIMIT = 4096  # distinct concrete paths remembered per rule (array indices vary)


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()  # sentinel: nothing released at this path


class Release:
    """Scratch record of one grant applied to one message."""

    __slots__ = ("altered", "key", "problems", "shared", "withheld")

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.shared: list[str] = []
        self.altered: list[Alteration] = []
        self.withheld: list[str] = []
        self.problems: dict[str, Reason] = {}

    def fail(self, path: str, value: object, treatment: str, problem: str) -> Any:
        self.withheld.extend(leaves(value, path))
        self.problems[path] = Reason(
            "treatment_failed", {"field": path, "treatment": treatment, "problem": problem}
        )
        return NOTHING


class Rule:
    """A terminal treatment at a path. ``fn(value, parent, release) -> released value``."""

    __slots__ = ("_alterations", "detail", "fn", "name")

    def __init__(
        self,
        name: str,
        detail: str,
        fn: Callable[[object, dict[str, Any] | None, Release], object] | None = None,
    ) -> None:
        self.name = name  # keep, pseudonymise, round, coarsen, truncate
        self.detail = detail
        self.fn = fn
        # Alterations repeat per path; creating frozen dataclasses is the hot path's main cost.
        self._alterations: dict[str, Alteration] = {}

    def alteration(self, path: str) -> Alteration:
        found = self._alterations.get(path)
        if found is None:
            found = Alteration(path, self.name, self.detail)
            if len(self._alterations) < _CACHE_LIMIT:
                self._alterations[path] = found
        return found

    def apply(self, value: object, path: str, parent: dict[str, Any] | None, rel: Release) -> Any:
        if self.fn is None:  # keep
            rel.shared.append(path)
            return value
        try:
            out = self.fn(value, parent, rel)
        except TreatmentFailed as exc:
            return rel.fail(path, value, self.name, exc.problem)
        rel.altered.append(self.alteration(path))
        return out


def coarsen_rule(grid_m: float, partner: str, is_lat: bool) -> Rule:
    """The half of a lat/lon pair at this key; ``partner`` is the sibling key of the other."""

    def fn(value: object, parent: dict[str, Any] | None, rel: Release) -> object:
        if parent is None or partner not in parent:
            raise TreatmentFailed("not_a_location")
        other = parent[partner]
        lat, lon = (value, other) if is_lat else (other, value)
        out_lat, out_lon = coarsen(lat, lon, grid_m)
        return out_lat if is_lat else out_lon

    return Rule("coarsen", f"{grid_m:g} m", fn)


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


def leaves(value: object, path: str) -> list[str]:
    """Concrete paths of every scalar (and empty container) under ``value``, iteratively."""
    if type(value) is not dict and type(value) is not list:
        return [path or "$payload"]
    out: list[str] = []
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if type(item) is dict and item:
            prefix = where + "." if where else ""
            stack.extend((v, prefix + k) for k, v in reversed(item.items()))
        elif type(item) is list and item:
            base = where or "$payload"
            stack.extend((v, f"{base}[{i}]") for i, v in reversed(list(enumerate(item))))
        else:
            out.append(where or "$payload")
    return out


def _release(
    value: object, nodes: list[Node], path: str, parent: dict[str, Any] | None, rel: Release
) -> Any:
    for node in nodes:
        if node.rule is not None:
            return node.rule.apply(value, path, parent, rel)
    kind = type(value)
    if kind is dict and value:
        children = [n for n in nodes if n.keys or n.star is not None]
        if children:
            out = _walk(value, children, path + ".", rel)  # type: ignore[arg-type]
            return out if out else NOTHING
    elif kind is list and value:
        elems = [n.elem for n in nodes if n.elem is not None]
        if elems:
            released = []
            items: list[Any] = value  # type: ignore[assignment]
            for index, item in enumerate(items):
                got = _release(item, elems, f"{path}[{index}]", None, rel)
                if got is not NOTHING:
                    released.append(got)
            return released if released else NOTHING
    rel.withheld.extend(leaves(value, path))
    return NOTHING


def _walk(obj: dict[str, Any], nodes: list[Node], prefix: str, rel: Release) -> dict[str, Any]:
    out: dict[str, Any] = {}
    single = nodes[0] if len(nodes) == 1 and nodes[0].star is None else None
    for key, value in obj.items():
        path = prefix + key
        if single is not None:
            child = single.keys.get(key)
            if child is None:
                if type(value) is dict or type(value) is list:
                    rel.withheld.extend(leaves(value, path))
                else:
                    rel.withheld.append(path)
                continue
            matched = [child]
        else:
            matched = [c for n in nodes if (c := n.keys.get(key)) is not None]
            matched.extend(n.star for n in nodes if n.star is not None)
            if not matched:
                rel.withheld.extend(leaves(value, path))
                continue
        got = _release(value, matched, path, obj, rel)
        if got is not NOTHING:
            out[key] = got
    return out


def release_root(root: object, trie: Node, rel: Release) -> dict[str, Any]:
    """Apply a grant's field trie to a parsed payload; an empty dict means nothing released."""
    if type(root) is not dict:
        rel.withheld.extend(leaves(root, ""))
        return {}
    if not root:
        return {}
    return _walk(root, [trie], "", rel)
