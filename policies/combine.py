"""Several grants for one recipient: each leaf leaves in the most protective form any of them gives it.

The rule (the README's "Which rule decides a field", between grants): for one recipient, every
grant that applies to a message now — not withdrawn, objected to or restricted, valid, its
consent in force, inside its hours, its conditions met, not rate limited — releases what it
names, each to its own topic for its own purpose. Where another applying grant for the same
recipient names the same leaf, the leaf leaves in the most protective of their treatments:

    aggregate (withheld now, summarised by the aggregate grant)
      > pseudonymise, coarsen, round, truncate (between two of one kind, the coarser)
      > keep

Two treatments of different kinds in the middle row (a pseudonym and a rounding) cannot be
ordered by how much they protect; ``policies.overlaps`` refuses such a policy with the place of
both grants, and should one reach a message anyway, the leaf is withheld (problem ``conflict``).
A grant that does not apply now constrains nothing: withdrawing the consent of a grant that
pseudonymises a field leaves the other grants' own treatments in force. Nothing here depends on
the order of the grants in the file (nor on the order of the other grants passed in).

The walk is ``policies.paths``' own (same candidate lists, same specificity inside a grant),
with the other grants' candidates ("shadows") carried along: where the grant keeps an object
and a shadow names something inside it, the walk goes in, so each leaf meets its own rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from policies.decision import Reason
from policies.listing import child, collect, element
from policies.paths import (
    NOTHING,
    JsonObject,
    Node,
    Release,
    Released,
    Rule,
    under_element,
    under_key,
)

__all__ = ["AGGREGATE", "most_protective", "release_with"]

AGGREGATE = "aggregate"  # the name of the shadow rules an aggregate grant contributes

Items = list[Node | Rule]


def most_protective(own: Rule, others: Sequence[Rule]) -> Rule | None:
    """The rule a leaf leaves under, given its own grant's rule and the other applying grants'
    rules for it; None when two of them cannot be ordered (different kinds of alteration).

    Independent of the order of ``others``; on a tie the grant's own rule stays."""
    rules = [own, *others]
    aggregates = [r for r in rules if r.name == AGGREGATE]
    if aggregates:
        return aggregates[0]
    altering = [r for r in rules if r.fn is not None]
    if not altering:
        return own
    if len({r.name for r in altering}) > 1:
        return None
    top = max(r.level for r in altering)
    if own.fn is not None and own.level == top:
        return own
    return next(r for r in altering if r.level == top)


def release_with(root: object, trie: Node, shadows: Sequence[Node], rel: Release) -> JsonObject:
    """``policies.paths.release_root`` for a grant whose leaves other applying grants for the
    same recipient (``shadows``, their field tries) may name more protectively."""
    if type(root) is not dict:
        collect(root, "", rel.withheld)
        return {}
    if not root:
        return {}
    return _walk(root, [trie], [[s] for s in shadows], "", rel)


def _walk(
    obj: JsonObject, items: Items, shadows: list[Items], parent: str, rel: Release
) -> JsonObject:
    out: JsonObject = {}
    for key, value in obj.items():
        path = child(parent, key)
        matched = under_key(items, key)
        if not matched:
            collect(value, path, rel.withheld)
            continue
        shadowed = [under_key(s, key) for s in shadows]
        got = _release(value, matched, shadowed, path, parent=obj, rel=rel)
        if got is not NOTHING:
            out[key] = got
    return out


def _elements(
    value: list[JsonValue], inner: Items, shadows: list[Items], path: str, rel: Release
) -> Released:
    inner_shadows = [under_element(s) for s in shadows]
    released: list[JsonValue] = []
    for position, item in enumerate(value):
        got = _release(item, inner, inner_shadows, element(path, position), parent=None, rel=rel)
        if got is not NOTHING:
            released.append(got)
    return released if released else NOTHING


def _release(
    value: JsonValue,
    items: Items,
    shadows: list[Items],
    path: str,
    *,
    parent: JsonObject | None,
    rel: Release,
) -> Released:
    """``policies.paths._release`` with the shadows walked alongside."""
    kind = type(value)
    for index, item in enumerate(items):
        if type(item) is Rule:
            return _decide(value, item, shadows, path, parent=parent, rel=rel)
        node: Node = item  # type: ignore[assignment]
        if kind is dict and value and (node.keys or node.star is not None):
            out = _walk(value, items[index:], shadows, path, rel)  # type: ignore[arg-type]
            return out if out else NOTHING
        if kind is list and value and node.elem is not None:
            return _elements(value, under_element(items[index:]), shadows, path, rel)  # type: ignore[arg-type]
        if node.rule is not None:
            return _decide(value, node.rule, shadows, path, parent=parent, rel=rel)
    collect(value, path, rel.withheld)
    return NOTHING


def _fits(node: Node, value: object) -> bool:
    """True when ``node``'s deeper paths reach into ``value`` (the walk would go in)."""
    kind = type(value)
    if kind is dict:
        return bool(value) and (bool(node.keys) or node.star is not None)
    return kind is list and bool(value) and node.elem is not None


def _shadow_rule(items: Items, value: object) -> Rule | None:
    """The rule a shadow's candidates give ``value`` as a whole (None: it names nothing here, or
    only things inside it)."""
    for item in items:
        if type(item) is Rule:
            return item
        node: Node = item  # type: ignore[assignment]
        if _fits(node, value):
            return None
        if node.rule is not None:
            return node.rule
    return None


def _goes_in(items: Items, value: object) -> bool:
    for item in items:
        if type(item) is Rule:
            return False
        node: Node = item  # type: ignore[assignment]
        if _fits(node, value):
            return True
        if node.rule is not None:
            return False
    return False


def _decide(
    value: JsonValue,
    rule: Rule,
    shadows: list[Items],
    path: str,
    *,
    parent: JsonObject | None,
    rel: Release,
) -> Released:
    kind = type(value)
    # A kept object a shadow names something inside: go in, carrying the keep, so each leaf
    # meets the shadow's rule for it. (Other treatments fail on an object whatever a shadow says.)
    if rule.fn is None and any(_goes_in(s, value) for s in shadows):
        if kind is dict:
            out = _walk(value, [rule], shadows, path, rel)  # type: ignore[arg-type]
            return out if out else NOTHING
        return _elements(value, [rule], shadows, path, rel)  # type: ignore[arg-type]
    others = [r for r in (_shadow_rule(s, value) for s in shadows) if r is not None]
    if not others:
        return rule.apply(value, path, parent, rel)
    chosen = most_protective(rule, others)
    if chosen is None:
        if rel.trace is not None:
            rel.trace.append((path, rule))
        return rel.fail(path, value, rule.name, "conflict")
    if chosen.name == AGGREGATE:
        if rel.trace is not None:
            rel.trace.append((path, chosen))
        summary = {"field": path, "window": chosen.detail, "grant": chosen.grant}
        return rel.refuse(path, value, Reason("summarised_elsewhere", summary))
    if chosen is not rule:
        rel.raised_by.add(chosen.grant)  # "left in the form another grant gives it"
    return chosen.apply(value, path, parent, rel)
