"""A grant's field lines compiled into rules: the trie its walk follows, and the shadow it casts.

Each line of ``fields`` becomes a ``Rule`` (keep, pseudonymise, round, truncate, or the two
halves of a coarsened position) at its path in a trie (``policies.paths``). Each rule knows its
grant and how coarse it is (``level``), so where several grants for one recipient name a leaf
the most protective rule can be chosen (``policies.combine``). An aggregate grant's fields
become ``aggregate`` rules in its shadow: a field grant for the same recipient withholds them.
"""

from __future__ import annotations

from pydantic import JsonValue

from policies.combine import AGGREGATE
from policies.model import GrantSpec
from policies.paths import JsonObject, Node, Release, Rule, coarsen_rule, insert
from policies.treatment_specs import AggregateSpec, CoarsenSpec, RoundSpec, Treatment, TruncateSpec
from policies.treatments import decimals_of, pseudonymise, round_to, truncate

__all__ = ["TRUNCATE_RANK", "FieldLineError", "aggregate_shadow", "field_rules", "rule"]

# How much of a time each unit hides: a coarser unit protects more.
TRUNCATE_RANK = {"second": 1.0, "minute": 2.0, "hour": 3.0, "day": 4.0}


class FieldLineError(ValueError):
    """A field line that cannot be compiled; ``path`` is the line's key (for file:line)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def rule(treatment: Treatment, *, grant: str = "", source: str = "") -> Rule:
    """The rule for one field line (not coarsen: that is a pair, see ``field_rules``)."""
    if treatment == "keep":
        return Rule("keep", "", grant=grant, source=source)
    if treatment == "pseudonymise":

        def pseudo(value: JsonValue, parent: JsonObject | None, rel: Release) -> str:
            assert rel.key is not None  # the engine withholds ("erased") before walking
            return pseudonymise(value, rel.key)

        return Rule("pseudonymise", "", pseudo, grant=grant, source=source)
    if isinstance(treatment, RoundSpec):
        step = treatment.round
        decimals = decimals_of(step)
        return Rule(
            "round",
            f"{step:g}",
            lambda v, p, r: round_to(v, step, decimals),
            grant=grant,
            source=source,
            level=step,
        )
    if isinstance(treatment, TruncateSpec):
        unit = treatment.truncate
        return Rule(
            "truncate",
            unit,
            lambda v, p, r: truncate(v, unit),
            grant=grant,
            source=source,
            level=TRUNCATE_RANK[unit],
        )
    raise AssertionError(f"unexpected treatment {treatment!r}")


def field_rules(grant: GrantSpec) -> tuple[Node, Rule | None]:
    """The grant's trie, and its ``$payload`` rule when it releases the body as one value."""
    root = Node()
    whole: Rule | None = None
    for path, treatment in grant.fields.items():
        try:
            if isinstance(treatment, CoarsenSpec):
                params = treatment.coarsen
                if path == "$payload" or path.endswith("[]"):
                    raise ValueError("coarsen names the latitude key; its sibling holds lon")
                head, _, last = path.rpartition(".")
                partner = f"{head}.{params.lon}" if head else params.lon
                if partner == path:
                    raise ValueError("lon must name the sibling key, not the latitude itself")
                for at, pair, is_lat in ((path, params.lon, True), (partner, last, False)):
                    half = coarsen_rule(params.grid_m, pair, is_lat, path)
                    half.grant = grant.id
                    insert(root, at, half)
            elif path == "$payload":
                whole = rule(treatment, grant=grant.id, source=path)
            else:
                insert(root, path, rule(treatment, grant=grant.id, source=path))
        except ValueError as exc:
            raise FieldLineError(path, str(exc)) from exc
    return root, whole


def aggregate_shadow(grant_id: str, spec: AggregateSpec) -> Node:
    """The fields an aggregate grant summarises, as rules a field grant must not release raw."""
    root = Node()
    window = f"{spec.window:g} s"
    for path in spec.fields:
        insert(root, path, Rule(AGGREGATE, window, grant=grant_id, source=path))
    return root
