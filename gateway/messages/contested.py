"""In a cluster: which instance decides a topic that customers on different instances both claim.

On a lone gateway two customers' overlapping patterns cannot both run: the route table refuses
the second (policies/routes.py). In a cluster each instance's engine holds only its own customers'
policies, so nothing compares them: an instance whose filter (``+/press-1/telemetry``, from werk-a's
``{site}/press-1/telemetry``) also brings another instance's customer's messages (werk-b's
``werk-b/press-1/telemetry``) would decide them under its own customer's policy -- werk-b's data
released to werk-a's recipients.

So every instance ranks the claims of every policy file in the shared directory, as each file
reads now (its own customers' files and those it sets aside for other instances), by
``policies.topics.precedence``, equal ones by customer name: a topic belongs to the customer
whose matching pattern ranks first. An instance leaves a topic whose first-ranked claim is a
customer another instance serves to that instance, acknowledged without a trace here (as
``subscriptions.elsewhere`` does for another customer's namespace); that instance subscribes to
the pattern (running or not: ``Admission.declared_topics``), decides the message and records it.
Every instance computes the same ranking from the same files, whatever order it read them in or
when it started, and nothing is refused for it. The pairs are logged once as a warning: on one
box they would be refused.

Per message, only topics a ``watched`` claim (another instance's, outranking one of ours it
overlaps) matches are ranked; on a lone gateway, or a cluster without such overlaps, nothing is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from policies.topics import TopicPattern, claims_overlap, namespace_owner, precedence

__all__ = ["Claim", "Contested"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One topic pattern of a customer's policy file, as the file reads now."""

    customer: str
    pattern: TopicPattern
    source: str  # the file's name, for the warning


class Contested:
    """The ranking of this instance's claims (``ours``) against those of customers other
    instances serve (``theirs``); see the module text."""

    def __init__(self, ours: Sequence[Claim], theirs: Sequence[Claim]) -> None:
        ranked = sorted(
            [(c, False) for c in ours] + [(c, True) for c in theirs],
            key=lambda entry: (_negated(precedence(entry[0].pattern.pattern)), entry[0].customer),
        )
        place = {id(claim): index for index, (claim, _) in enumerate(ranked)}
        # (their claim, our claim it takes topics from): each such pair once.
        self.pairs = [(t, o) for t, o in _overlapping(theirs, ours) if place[id(t)] < place[id(o)]]
        watched = {id(t): t for t, _ in self.pairs}
        self._watched = list(watched.values())
        self._ranked = ranked if self._watched else []

    def yields(self, topic: str) -> bool:
        """Whether ``topic`` is another instance's customer's: its first-ranked claim is theirs."""
        if not self._watched or not any(t.pattern.match(topic) is not None for t in self._watched):
            return False
        owner = namespace_owner(topic)
        for claim, theirs in self._ranked:
            # A pattern never takes a topic in another customer's namespace (policies.routes).
            if owner in (None, claim.customer) and claim.pattern.match(topic) is not None:
                return theirs
        return False

    def warnings(self) -> list[str]:
        """One line per pair, for the installer: on one box the later file would be refused."""
        return [
            f"policy {o.source}: topic pattern {o.pattern.pattern!r} of customer {o.customer!r} "
            f"overlaps {t.pattern.pattern!r} of customer {t.customer!r} ({t.source}), which "
            "another instance runs; a topic matching both is left to that instance (its pattern "
            "is the more literal one, or its customer's name sorts first). On one gateway this "
            "pair would be refused: give each device its own topics"
            for t, o in self.pairs
        ]


def _negated(key: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-part for part in key)


def _overlapping(theirs: Sequence[Claim], ours: Sequence[Claim]) -> Iterator[tuple[Claim, Claim]]:
    """The pairs of claims some topic could belong to both of: a literal pattern against the
    literal ones by dictionary, everything else only against patterns that can share its first
    level (as ``policies.routes`` checks one box)."""
    exact: dict[str, list[Claim]] = {}
    by_first: dict[str | None, list[Claim]] = {}
    for o in ours:
        if o.pattern.literal:
            exact.setdefault(o.pattern.pattern, []).append(o)
        else:
            by_first.setdefault(o.pattern.first_level, []).append(o)
    for t in theirs:
        first = t.pattern.first_level
        if t.pattern.literal:
            yield from (
                (t, o) for o in exact.get(t.pattern.pattern, ()) if o.customer != t.customer
            )
        candidates = by_first.get(None, []) + (
            by_first.get(first, [])
            if first is not None
            else [o for key, group in by_first.items() if key is not None for o in group]
        )
        if not t.pattern.literal:
            candidates += [
                o for text, group in exact.items() for o in group if _may_share(first, text)
            ]
        for o in candidates:
            if claims_overlap(t.customer, t.pattern.pattern, o.customer, o.pattern.pattern):
                yield t, o


def _may_share(first: str | None, topic: str) -> bool:
    """Whether a literal ``topic`` can match a pattern whose first level is ``first``."""
    return first is None or topic.partition("/")[0] == first
