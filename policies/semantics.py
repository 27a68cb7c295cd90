"""The verdict of every leaf: what one grant does to each field and topic level of a message.

This is the engine's own walk (``policies.paths.release_root``, the specificity rule documented
there; with the other grants that apply for the same recipient, ``policies.combine``'s walk and
its most-protective rule) run with a trace, so it cannot disagree with what is enforced: the
engine releases the leaves listed here as shared or altered, and nothing else. Each verdict
names the grant path that decided it and, when that is another grant's, that grant; or none
when no path of the grant names the leaf (default deny). The lists are
bounded as a decision's are (``policies.listing``: a message of 8,000 keys lists its first ones).

``policy explain`` prints these verdicts; the property tests hold the decision, the explanation,
``describe`` and the report's "never passed on" to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from policies.combine import release_with
from policies.compiler import CompiledGrant
from policies.decision import Decision, Reason
from policies.listing import leaves
from policies.paths import Release, Rule, release_root
from policies.releases import carrier

__all__ = ["LeafVerdict", "across_releases", "leaf_verdicts"]

# "elsewhere": not in this release, but another release to the same recipient carried it
# (``across_releases``).
Verdict = Literal["shared", "altered", "withheld", "elsewhere"]


@dataclass(frozen=True, slots=True)
class LeafVerdict:
    path: str  # concrete: "driver.name", "readings[2].value", "$topic.user", "$payload"
    verdict: Verdict
    rule: str | None  # the grant's path (or topic level) that decided; None: nothing names it
    treatment: str | None = None  # keep, pseudonymise, round, coarsen, truncate, aggregate
    detail: str = ""
    reason: Reason | None = None  # why a leaf a rule names was withheld (a treatment failed)
    grant: str | None = None  # the grant whose rule decided (another one's: more protective)


def _decider(path: str, trace: Mapping[str, Rule]) -> Rule | None:
    """The rule applied at ``path`` or at the nearest parent the walk applied one to."""
    probe = path
    while True:
        if probe in trace:
            return trace[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            return None
        probe = probe[:cut]


def _verdict(
    path: str,
    verdict: Verdict,
    rule: Rule | None,
    treatment: str | None = None,
    detail: str = "",
    *,
    reason: Reason | None = None,
) -> LeafVerdict:
    if rule is None:
        return LeafVerdict(path, verdict, None, treatment, detail, reason)
    return LeafVerdict(path, verdict, rule.source, treatment, detail, reason, rule.grant or None)


def leaf_verdicts(
    grant: CompiledGrant,
    root: object,
    *,
    key: bytes | None = None,
    captures: Mapping[str, str] | None = None,
    others: Sequence[CompiledGrant] = (),
) -> tuple[LeafVerdict, ...]:
    """What ``grant`` does to each leaf of the parsed body ``root`` and to each topic level
    (``captures``) when it applies to a message; ``key`` pseudonymises (None: an unkeyed run);
    ``others``: the other grants for the recipient that apply to it too (``policies.combine``)."""
    out: list[LeafVerdict] = []
    if grant.opaque:
        out.append(LeafVerdict("$payload", "shared", "payload", "keep"))
    elif grant.aggregate is not None:
        fields = grant.aggregate.fields
        for leaf in leaves(root, ""):
            if leaf in fields:
                detail = f"{', '.join(fields[leaf])}; {grant.aggregate.window:g} s"
                out.append(LeafVerdict(leaf, "altered", leaf, "aggregate", detail))
            else:
                out.append(LeafVerdict(leaf, "withheld", None))
    elif grant.whole is not None:
        rule = grant.whole
        verdict: Verdict = "shared" if rule.fn is None else "altered"
        out.append(LeafVerdict("$payload", verdict, "$payload", rule.name, rule.detail))
    else:
        rel = Release(key or b"\0" * 32, trace=True)
        shadows = [g.shadow for g in others if g is not grant and g.shadow is not None]
        if shadows:
            release_with(root, grant.trie, shadows, rel)
        else:
            release_root(root, grant.trie, rel)
        trace = dict(rel.trace or ())
        for path in rel.shared.items:
            out.append(_verdict(path, "shared", _decider(path, trace), "keep"))
        for alteration in rel.altered.items:
            path = alteration.path
            out.append(
                _verdict(path, "altered", trace.get(path), alteration.treatment, alteration.detail)
            )
        for path in rel.withheld.items:
            decider = _decider(path, trace)
            problem = next(
                (
                    r
                    for p, r in rel.problems.items()
                    if path == p or path.startswith((p + ".", p + "["))
                ),
                None,
            )
            out.append(_verdict(path, "withheld", decider, reason=problem if decider else None))
    names = grant.template.names
    if "topic" in names:
        out.append(LeafVerdict("$topic", "shared", "topic", "keep"))
    for name in sorted((captures or {}).keys()):
        how = grant.topic_levels.get(name) if name in names else None
        if how == "keep":
            out.append(LeafVerdict(f"$topic.{name}", "shared", f"topic_levels.{name}", "keep"))
        elif how == "pseudonymise":
            out.append(
                LeafVerdict(f"$topic.{name}", "altered", f"topic_levels.{name}", "pseudonymise")
            )
        elif "topic" not in names:
            out.append(LeafVerdict(f"$topic.{name}", "withheld", None))
    return tuple(out)


def across_releases(
    releases: Sequence[tuple[Decision, tuple[LeafVerdict, ...]]],
) -> list[tuple[Decision, tuple[LeafVerdict, ...]]]:
    """Several releases of one message to one recipient (one per applying grant), each with its
    leaves' verdicts: a leaf one release withholds and another carries is ``elsewhere`` in the
    first, naming the grant that carried it. The rule is ``policies.releases.carrier``, the one
    the log's explanations follow (a leaf that reached the recipient is never "kept here")."""
    carried = carrier([decision for decision, _ in releases])
    out: list[tuple[Decision, tuple[LeafVerdict, ...]]] = []
    for decision, verdicts in releases:
        fixed: list[LeafVerdict] = []
        for v in verdicts:
            by = carried(v.path) if v.verdict == "withheld" else None
            if by is not None and by != decision.grant:
                fixed.append(
                    replace(v, verdict="elsewhere", rule=None, treatment=None, detail="", grant=by)
                )
            else:
                fixed.append(v)
        out.append((decision, tuple(fixed)))
    return out
