"""Which instance of a cluster decides a topic customers on different instances both claim: the
ranking every instance computes alike, checked from both sides of each pair."""

from __future__ import annotations

import itertools

from gateway.messages.contested import Claim, Contested
from policies.topics import TopicPattern, claims_overlap, precedence


def _claims(customer: str, *patterns: str) -> list[Claim]:
    return [Claim(customer, TopicPattern(p), f"{customer}.yaml") for p in patterns]


def _deciders(files: dict[str, list[Claim]], placement: dict[str, str], topic: str) -> list[str]:
    """The instances that decide ``topic``: those it reaches (a pattern of theirs matches it)
    and that do not leave it to another."""
    deciding = []
    for instance in sorted(set(placement.values())):
        ours = [c for customer, cs in files.items() if placement[customer] == instance for c in cs]
        theirs = [
            c for customer, cs in files.items() if placement[customer] != instance for c in cs
        ]
        reaches = any(c.pattern.match(topic) is not None for c in ours)
        if reaches and not Contested(ours, theirs).disowns(topic):
            deciding.append(instance)
    return deciding


def test_the_more_literal_pattern_takes_the_topic_on_both_instances() -> None:
    werk_a = _claims("werk-a", "{site}/press-1/telemetry")
    werk_b = _claims("werk-b", "werk-b/press-1/telemetry")
    hall_a = Contested(werk_a, werk_b)
    hall_b = Contested(werk_b, werk_a)
    assert hall_a.disowns("werk-b/press-1/telemetry")  # werk-b's, on hall-b
    assert not hall_a.disowns("werk-a/press-1/telemetry")  # werk-a's own site: only its pattern
    assert not hall_b.disowns("werk-b/press-1/telemetry")
    (warning,) = hall_a.warnings()
    assert "'{site}/press-1/telemetry' of customer 'werk-a'" in warning
    assert "'werk-b/press-1/telemetry' of customer 'werk-b' (werk-b.yaml)" in warning
    assert hall_b.warnings() == []  # hall-b gives nothing up: it says nothing


def test_equally_literal_patterns_are_released_by_neither() -> None:
    """Two customers' ``{id}/events/rpc`` on two instances: no instance can tell whose device
    sent ``shelly-1/events/rpc``, so both record it withheld (one box refuses the second
    file). Before, both decided it, each under its own customer's policy."""
    alpha = _claims("alpha", "+/events/rpc")
    beta = _claims("beta", "{id}/events/rpc")
    assert Contested(alpha, beta).disowns("shelly-1/events/rpc")
    assert Contested(beta, alpha).disowns("shelly-1/events/rpc")
    same = Contested(_claims("zeta", "plant/x"), _claims("gamma", "plant/x"))
    assert same.disowns("plant/x")
    (warning,) = same.warnings()
    assert "no instance can tell whose device" in warning and "released by neither" in warning


def test_a_pattern_never_takes_a_topic_in_another_customers_namespace() -> None:
    """The engine's rule (policies/routes.py): werk-b's wildcard outranks nothing of werk-a's in
    werk-a's namespace, however it ranks."""
    werk_a = _claims("werk-a", "devices/werk-a/+/x", "+/+/+/y")
    werk_b = _claims("werk-b", "{ns}/{c}/{d}/x", "{a}/{b}/press/y")
    hall_a = Contested(werk_a, werk_b)
    assert not hall_a.disowns("devices/werk-a/press/x")
    assert not hall_a.disowns("devices/werk-a/press/y")
    assert hall_a.disowns("plant/hall/press/y")  # in no namespace: werk-b's ranks first
    # werk-c's namespace: neither pattern takes it, so it is decided where it arrives (the
    # engine withholds it, "unknown device"), never left to an instance that would not.
    assert not hall_a.disowns("devices/werk-c/press/y")


def test_a_lone_gateway_or_a_cluster_without_overlaps_looks_at_nothing() -> None:
    lone = Contested(_claims("werk-a", "{site}/press-1/telemetry"), [])
    assert lone.pairs == [] and not lone.disowns("werk-b/press-1/telemetry")
    apart = Contested(_claims("werk-a", "a/+"), _claims("werk-b", "b/+"))
    assert apart.pairs == [] and not apart.disowns("b/1")


def test_one_instance_decides_a_topic_unless_the_best_claims_tie_across_instances() -> None:
    """Every placement of five customers' overlapping patterns on up to three instances, and
    every topic of a small alphabet: a topic some pattern matches is decided by exactly the one
    instance holding its most literal claim, or by none when another instance holds a claim
    as literal (each then records it withheld)."""
    files = {
        "anna": _claims("anna", "+/b/c", "a/{x}/#"),
        "bert": _claims("bert", "a/b/c", "x/y"),
        "carl": _claims("carl", "a/#", "{p}/y"),
        "dora": _claims("dora", "+/+/c", "x/+"),
        "emil": _claims("emil", "{q}/+/c", "b"),
    }
    levels = ["a", "b", "c", "x", "y"]
    topics = ["/".join(t) for n in (1, 2, 3, 4) for t in itertools.product(levels, repeat=n)]
    names = sorted(files)
    for placement_of in itertools.product(("i1", "i2", "i3"), repeat=len(names)):
        placement = dict(zip(names, placement_of, strict=True))
        for topic in topics:
            matching = [
                c for cs in files.values() for c in cs if c.pattern.match(topic) is not None
            ]
            best = max((precedence(c.pattern.pattern) for c in matching), default=None)
            holders = {
                placement[c.customer] for c in matching if precedence(c.pattern.pattern) == best
            }
            expected = sorted(holders) if len(holders) == 1 else []
            assert _deciders(files, placement, topic) == expected, (placement, topic)


def test_the_pairs_found_by_bucket_are_every_pair_theirs_ranks_first_in_once() -> None:
    """The first-level buckets and the literal dictionary miss no pair and count none twice,
    against comparing every two patterns and ranking them."""
    patterns = [
        "a/b", "a/+", "+/b", "#", "a/#", "b/{x}", "devices/werk-a/#", "{n}/werk-a/q", "c",
        "devices/werk-b/x", "openevse-{s}/b", "+/+", "{n}/b",
    ]  # fmt: skip
    for mine, other in (("werk-a", "werk-b"), ("werk-b", "werk-a")):
        ours, theirs = _claims(mine, *patterns), _claims(other, *patterns)
        found = [(t.pattern.pattern, o.pattern.pattern) for t, o in Contested(ours, theirs).pairs]
        brute = [
            (t.pattern.pattern, o.pattern.pattern)
            for t in theirs
            for o in ours
            if claims_overlap(t.customer, t.pattern.pattern, o.customer, o.pattern.pattern)
            and _key(t) <= _key(o)
        ]
        assert sorted(found) == sorted(brute) and len(found) == len(set(found))
        assert ("a/b", "a/+") in found and ("a/b", "a/b") in found and ("+/b", "a/+") not in found


def _key(claim: Claim) -> tuple[int, ...]:
    return tuple(-part for part in precedence(claim.pattern.pattern))
