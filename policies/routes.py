"""The route table: which device stream a topic belongs to, and which grants to try for it.

Built once per policy set (and again on a hot reload): exact topics sit in a dict, patterns
are bucketed by their first level, and only patterns with a wildcard first level are tried
for every topic. A topic must belong to exactly one device stream across all customers, so
building the table refuses overlapping patterns with the place of both in the policy files.

A pattern with a wildcard first level never takes a topic in another customer's namespace
(``devices/<other>/…``, ``policies.topics.namespace_owner``): such a topic is the namespace's
customer's, found in the table's buckets before the wildcard patterns are tried, or no one's. So
such a pattern and one in the other customer's namespace do not overlap for the table
(``policies.topics.claims_overlap``), whichever file or registration came first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from policies.compiler import CompiledDevice, CompiledGrant, CompiledPolicy, CompiledTopic
from policies.errors import PolicyError
from policies.topics import TopicPattern, claims_overlap, namespace_owner

__all__ = ["DeviceRef", "Route", "RouteTable"]

_EMPTY: Mapping[str, str] = {}


# Not frozen: the intake resolves every arriving message's device (``Engine.device_for``), and a
# frozen __init__ cost twice a plain one. Never changed after it is built; hashes as before.
@dataclass(slots=True, unsafe_hash=True)
class DeviceRef:
    """Who a topic belongs to: customer, device, its human name and kind, and the stream."""

    customer: str
    device: str
    name: str
    kind: str
    stream: str
    captures: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None


class Route:
    """Precomputed per (customer, device, stream): which grants to try for which recipient,
    recipients by name and grants by id."""

    __slots__ = ("device", "policy", "recipients", "stream", "topics")

    def __init__(self, policy: CompiledPolicy, device: CompiledDevice, stream: str) -> None:
        self.policy = policy
        self.device = device
        self.stream = stream
        self.topics: dict[str, str] = {}  # grant id -> upstream topic, for static templates
        # Recipients and their grants by name and id, never by their order in the file: the
        # engine's outcome must not depend on it (``policies.combine``).
        by_id = sorted(policy.grants, key=lambda g: g.id)
        table: list[tuple[str, tuple[CompiledGrant, ...]]] = [
            (r, tuple(g for g in by_id if g.recipient == r and g.covers(device.id, stream)))
            for r in sorted({g.recipient for g in policy.grants})
        ]
        # No grant for any recipient: one decision with recipient None says so.
        self.recipients = tuple(table) if any(grants for _, grants in table) else ()


class RouteTable:
    """Topic -> route, for the compiled policies of every customer on this box."""

    __slots__ = ("_buckets", "_exact", "_wild")

    def __init__(self, policies: Sequence[CompiledPolicy]) -> None:
        _check_overlaps(policies)
        exact: dict[str, Route] = {}
        buckets: dict[str, list[tuple[TopicPattern, Route]]] = {}
        wild: list[tuple[TopicPattern, Route]] = []
        for policy in policies:
            for device in policy.devices:
                routes = {s: Route(policy, device, s) for s in device.streams}
                for topic in device.topics:
                    route = routes[topic.stream]
                    pattern = topic.pattern
                    if pattern.literal:
                        exact[pattern.pattern] = route
                    elif pattern.first_level is not None:
                        buckets.setdefault(pattern.first_level, []).append((pattern, route))
                    else:
                        wild.append((pattern, route))
        self._exact, self._buckets, self._wild = exact, buckets, wild

    def lookup(self, topic: str) -> tuple[Route, Mapping[str, str]] | None:
        route = self._exact.get(topic)
        if route is not None:
            return route, _EMPTY
        for pattern, candidate in self._buckets.get(topic.partition("/")[0], ()):
            captures = pattern.match(topic)
            if captures is not None:
                return candidate, captures
        for pattern, candidate in self._wild:
            captures = pattern.match(topic)
            if captures is not None and namespace_owner(topic) in (None, candidate.policy.customer):
                return candidate, captures
        return None


def _all_topics(
    policies: Sequence[CompiledPolicy],
) -> Iterator[tuple[CompiledPolicy, CompiledDevice, CompiledTopic]]:
    for policy in policies:
        for device in policy.devices:
            for topic in device.topics:
                yield policy, device, topic


def _check_overlaps(policies: Sequence[CompiledPolicy]) -> None:
    """A topic must belong to exactly one device stream, across all customers."""
    by_first: dict[str | None, list[tuple[CompiledPolicy, CompiledDevice, CompiledTopic]]] = {}
    for policy, device, topic in _all_topics(policies):
        first = topic.pattern.first_level
        candidates = (
            by_first.get(None, [])
            if first is not None
            else [entry for group in by_first.values() for entry in group]
        )
        if first is not None:
            candidates = candidates + by_first.get(first, [])
        for other_policy, other_device, other_topic in candidates:
            if claims_overlap(
                policy.customer,
                topic.pattern.pattern,
                other_policy.customer,
                other_topic.pattern.pattern,
            ):
                raise PolicyError(
                    policy.source,
                    f"topic pattern {topic.pattern.pattern!r} of device {device.id!r} overlaps "
                    f"{other_topic.pattern.pattern!r} of device {other_device.id!r} "
                    f"(customer {other_policy.customer!r}, {other_policy.source}); "
                    "a topic must belong to exactly one device stream",
                    line=topic.line,
                    key="pattern",
                )
        by_first.setdefault(first, []).append((policy, device, topic))
