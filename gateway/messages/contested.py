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
policy files it sets aside for other instances claim (``theirs``), by ``policies.topics.precedence``.
A topic for which a claim of theirs ranks before every claim of ours, or as high as the best of
them, is not ours to decide: the engine resolves it to no device (``Engine.disowned``) and it is
withheld and recorded here (reason ``claimed_elsewhere``), never released under our customer's
policy. Of two equally literal patterns (two customers' ``{id}/events/rpc``) no instance can
tell whose device sent a message,
so each records it withheld and neither releases it, as one box refuses the second file. Nothing
is acknowledged untraced on this ground: if the other instance does not take the message after
all (its file refused there, say), the record here is its trace.

What ``theirs`` holds of a set-aside file is, as near as this instance can tell, what its owner
runs: the last version that compiled here in this run (the owner keeps running its last good
version through a broken edit), compiled with the recipients the file names (another instance
may have recipients this one has not); else every valid pattern the file reads as now, a
first-level wildcard too (more than its owner attributes: this side errs towards withholding).
An edit naming another customer adds that customer's claims to those before it (the owner may
refuse the edit and run on). Claims are kept when the file turns unreadable or is removed, as
the owner goes on attributing the customer's messages by the file's shape, until a file for the
same customer replaces them. Where the owner runs something this instance never read (it started
while the file could not be read; the owner refused a version that compiles here), the two may
disagree: this side then either withholds what its own customer's patterns would take or, as
before this ranking, decides such a topic under its own customer's policy.

Per message, only topics a claim of theirs that ranks as high as one of ours (``watched``)
matches are ranked, through indexes like the route table's, each distinct pattern matched once; on
a lone gateway nothing is asked at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.compiler import CompiledPolicy
from policies.topics import TopicPattern, claims_overlap, namespace_owner, precedence

__all__ = ["Claim", "Contested", "claims_of", "takings"]


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
    first-level wildcards apart (as ``policies.routes.RouteTable``); each distinct pattern is
    matched once however many customers claim it (a device family's ``{id}/events/rpc``)."""

    def __init__(self, claims: Sequence[Claim]) -> None:
        self.exact: dict[str, list[Claim]] = {}
        patterns: dict[str, tuple[TopicPattern, list[Claim]]] = {}
        for claim in claims:
            if claim.pattern.literal:
                self.exact.setdefault(claim.pattern.pattern, []).append(claim)
            else:
                patterns.setdefault(claim.pattern.pattern, (claim.pattern, []))[1].append(claim)
        self.by_first: dict[str, list[tuple[TopicPattern, list[Claim]]]] = {}
        self.wild: list[tuple[TopicPattern, list[Claim]]] = []
        for pattern, group in patterns.values():
            first = pattern.first_level
            (self.wild if first is None else self.by_first.setdefault(first, [])).append(
                (pattern, group)
            )

    def matching(self, topic: str) -> Iterator[Claim]:
        yield from self.exact.get(topic, ())
        for pattern, group in (*self.by_first.get(topic.partition("/")[0], ()), *self.wild):
            if pattern.match(topic) is not None:
                yield from group


class Contested:
    """``ours`` ranked against ``theirs`` (see the module text)."""

    def __init__(self, ours: Sequence[Claim], theirs: Sequence[Claim]) -> None:
        self._rank = {
            id(claim): (_negated(precedence(claim.pattern.pattern)), mine)
            for mine, claims in ((True, ours), (False, theirs))
            for claim in claims
        }
        # (their claim, our claim it takes topics from or ties with): each such pair once.
        self.pairs = [
            (t, o)
            for t, o in _overlapping(theirs, ours)
            if self._rank[id(t)][0] <= self._rank[id(o)][0]
        ]
        watched = list({id(t): t for t, _ in self.pairs}.values())
        self._watched = _Index(watched) if watched else None
        self._all = _Index([*ours, *theirs]) if watched else None

    def disowns(self, topic: str) -> bool:
        """Whether ``topic`` is not ours to decide: a claim of another instance's customer ranks
        before every claim of ours that matches it, or as high as the best of them (then
        neither instance can tell whose device it is, and both record it withheld)."""
        if self._watched is None or self._all is None:
            return False
        if next(self._watched.matching(topic), None) is None:
            return False
        owner = namespace_owner(topic)
        # A pattern never takes a topic in another customer's namespace (policies.routes).
        ranks = [
            self._rank[id(c)] for c in self._all.matching(topic) if owner in (None, c.customer)
        ]
        best = min(ranks, default=None)  # of equals, theirs sorts first
        return best is not None and not best[1]

    def warnings(self) -> list[str]:
        """One line per pair, for the installer: on one box the later file would be refused."""
        return [
            f"policy {o.source}: topic pattern {o.pattern.pattern!r} of customer {o.customer!r} "
            f"overlaps {t.pattern.pattern!r} of customer {t.customer!r} ({t.source}), whose "
            f"policy another instance runs; {_WHOSE[self._rank[id(t)][0] == self._rank[id(o)][0]]}"
            " On one gateway this pair would be refused: give each device its own topics"
            for t, o in self.pairs
        ]


_WHOSE = {
    False: "a topic matching both is that customer's (its pattern is the more literal one), so "
    "it is recorded here as withheld and never released under this one.",
    True: "the two are as literal, so no instance can tell whose device sends on a topic "
    "matching both: it is recorded as withheld here and there, released by neither.",
}


def takings(ours: Sequence[Claim], theirs: Sequence[Claim]) -> list[str]:
    """One line per pair the other way round: a claim of ours more literal than another
    instance's customer's, whose instance then records the topics they share withheld."""
    reverse = Contested(theirs, ours)  # its pairs: (ours, theirs), ours as high or higher
    return [
        f"policy {o.source}: topic pattern {o.pattern.pattern!r} of customer {o.customer!r} "
        f"is more literal than {t.pattern.pattern!r} of customer {t.customer!r} ({t.source}), "
        "whose policy another instance runs: topics matching both are this customer's, and that "
        "instance records them withheld. On one gateway this pair would be refused"
        for o, t in reverse.pairs
        if precedence(o.pattern.pattern) > precedence(t.pattern.pattern)
    ]


def _every(groups: Sequence[tuple[TopicPattern, list[Claim]]]) -> list[Claim]:
    return [claim for _, group in groups for claim in group]


def _negated(key: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-part for part in key)


def _overlapping(theirs: Sequence[Claim], ours: Sequence[Claim]) -> Iterator[tuple[Claim, Claim]]:
    """The pairs of claims some topic could belong to both of, each once, leaving out those where
    theirs cannot rank as high: a first-level wildcard of theirs never ranks with a claim of
    ours with a literal first level. A literal pattern meets the literal ones by dictionary,
    everything else only the patterns that can share its first level (as ``policies.routes``)."""
    index = _Index(ours)
    exact_by_first: dict[str, list[Claim]] = {}
    for topic, claims in index.exact.items():
        exact_by_first.setdefault(topic.partition("/")[0], []).extend(claims)
    wild = _every(index.wild)
    for t in theirs:
        first = t.pattern.first_level
        if first is None:
            candidates = wild
        elif t.pattern.literal:
            yield from ((t, o) for o in index.exact.get(t.pattern.pattern, ()))
            candidates = wild + _every(index.by_first.get(first, []))
        else:
            candidates = (
                wild + _every(index.by_first.get(first, [])) + exact_by_first.get(first, [])
            )
        for o in candidates:
            if claims_overlap(t.customer, t.pattern.pattern, o.customer, o.pattern.pattern):
                yield t, o
