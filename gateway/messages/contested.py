"""In a cluster: which customer's policy may decide a topic that customers on different instances
both claim.

On a lone gateway two customers' overlapping patterns cannot both run: the route table refuses
the second (policies/routes.py). In a cluster each instance's engine holds only its own customers'
policies, so nothing compares them: an instance whose filter (``+/press-1/telemetry``, from werk-a's
``{site}/press-1/telemetry``) also brings another instance's customer's messages (werk-b's
``werk-b/press-1/telemetry``) would decide them under its own customer's policy -- werk-b's data
released to werk-a's recipients.

So an instance ranks what it decides itself (``ours``: the patterns of the policies it runs, and
of its customers' files that do not run, whose messages it records as withheld) against what the
policy files it sets aside for other instances claim (``theirs``), by ``policies.topics.precedence``
and, for equal patterns, the customer's name. A topic whose first-ranked claim is theirs is not
ours to decide: the engine resolves it to no device (``Engine.disowned``), so it is withheld and
recorded here as from an unknown device, never released under our customer's policy, while the
instance that runs the other customer decides it. Nothing is acknowledged untraced on this
ground: if the other instance does not take the message after all (its file refused there, say),
the record here is its trace.

What ``theirs`` holds of a set-aside file, as near as this instance can tell what its owner runs:
the last version that compiled here in this run (the owner keeps running its last good version
through a broken edit), else every valid pattern the file reads as now; kept when the file turns
unreadable or disappears (the owner still attributes its customer's messages by the file's
shape). Where that differs from what the owner runs (an instance started while another's file
could not be read), both may still decide a topic, as before this ranking; this side only ever
errs towards recording instead of releasing.

Per message, only topics a claim of theirs that outranks one of ours (``watched``) matches are
ranked, through indexes like the route table's; on a lone gateway nothing is asked at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.compiler import CompiledPolicy
from policies.topics import TopicPattern, claims_overlap, namespace_owner, precedence

__all__ = ["Claim", "Contested", "claims_of"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One topic pattern a customer's policy file claims."""

    customer: str
    pattern: TopicPattern
    source: str  # the file's name, for the warning


def claims_of(policies: Iterable[CompiledPolicy]) -> list[Claim]:
    """Every topic pattern of compiled ``policies``, as claims."""
    return [
        Claim(policy.customer, topic.pattern, Path(policy.source).name)
        for policy in policies
        for device in policy.devices
        for topic in device.topics
    ]


class _Index:
    """Claims by how a topic finds them: literal patterns by topic, the others by first level,
    first-level wildcards in a list (as ``policies.routes.RouteTable``)."""

    def __init__(self, claims: Sequence[Claim]) -> None:
        self.exact: dict[str, list[Claim]] = {}
        self.by_first: dict[str, list[Claim]] = {}
        self.wild: list[Claim] = []
        for claim in claims:
            pattern = claim.pattern
            if pattern.literal:
                self.exact.setdefault(pattern.pattern, []).append(claim)
            elif pattern.first_level is not None:
                self.by_first.setdefault(pattern.first_level, []).append(claim)
            else:
                self.wild.append(claim)

    def matching(self, topic: str) -> Iterator[Claim]:
        yield from self.exact.get(topic, ())
        for claim in self.by_first.get(topic.partition("/")[0], ()):
            if claim.pattern.match(topic) is not None:
                yield claim
        for claim in self.wild:
            if claim.pattern.match(topic) is not None:
                yield claim


class Contested:
    """``ours`` ranked against ``theirs`` (see the module text)."""

    def __init__(self, ours: Sequence[Claim], theirs: Sequence[Claim]) -> None:
        self._rank = {
            id(claim): (_negated(precedence(claim.pattern.pattern)), claim.customer, mine)
            for mine, claims in ((True, ours), (False, theirs))
            for claim in claims
        }
        # (their claim, our claim it takes topics from): each such pair once.
        self.pairs = [
            (t, o) for t, o in _overlapping(theirs, ours) if self._rank[id(t)] < self._rank[id(o)]
        ]
        watched = list({id(t): t for t, _ in self.pairs}.values())
        self._watched = _Index(watched) if watched else None
        self._all = _Index([*ours, *theirs]) if watched else None

    def disowns(self, topic: str) -> bool:
        """Whether ``topic``'s first-ranked claim is another instance's customer's."""
        if self._watched is None or self._all is None:
            return False
        if next(self._watched.matching(topic), None) is None:
            return False
        owner = namespace_owner(topic)
        # A pattern never takes a topic in another customer's namespace (policies.routes).
        ranks = [
            self._rank[id(c)] for c in self._all.matching(topic) if owner in (None, c.customer)
        ]
        return bool(ranks) and not min(ranks)[2]

    def warnings(self) -> list[str]:
        """One line per pair, for the installer: on one box the later file would be refused."""
        return [
            f"policy {o.source}: topic pattern {o.pattern.pattern!r} of customer {o.customer!r} "
            f"overlaps {t.pattern.pattern!r} of customer {t.customer!r} ({t.source}), whose "
            "policy another instance runs; a topic matching both is that customer's (its pattern "
            "is the more literal one, or its name sorts first), so it is recorded here as from an "
            "unknown device and never released under this one. On one gateway this pair would be "
            "refused: give each device its own topics"
            for t, o in self.pairs
        ]


def _negated(key: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-part for part in key)


def _overlapping(theirs: Sequence[Claim], ours: Sequence[Claim]) -> Iterator[tuple[Claim, Claim]]:
    """The pairs of claims some topic could belong to both of, each once, leaving out those where
    theirs cannot rank first: a first-level wildcard of theirs never outranks a claim of ours
    with a literal first level. A literal pattern meets the literal ones by dictionary, everything
    else only the patterns that can share its first level (as ``policies.routes`` checks a box)."""
    index = _Index(ours)
    exact_by_first: dict[str, list[Claim]] = {}
    for topic, claims in index.exact.items():
        exact_by_first.setdefault(topic.partition("/")[0], []).extend(claims)
    for t in theirs:
        first = t.pattern.first_level
        if first is None:
            candidates = index.wild
        elif t.pattern.literal:
            yield from ((t, o) for o in index.exact.get(t.pattern.pattern, ()))
            candidates = index.wild + index.by_first.get(first, [])
        else:
            candidates = index.wild + index.by_first.get(first, []) + exact_by_first.get(first, [])
        for o in candidates:
            if claims_overlap(t.customer, t.pattern.pattern, o.customer, o.pattern.pattern):
                yield t, o
