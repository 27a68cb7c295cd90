"""One applying grant's release of one message, and several releases to one recipient."""

from __future__ import annotations

from typing import Any

import orjson

from policies.body import Parsed
from policies.decision import Alteration, Decision, Outcome
from policies.releases import (
    Held,
    Walk,
    besides,
    release_fields,
    release_topic,
    release_whole,
)
from policies.routes import Route
from policies.treatments import pseudonymise

from .conftest import Keys, make_engine

KEY = Keys().key("acme", "r1")


def _route(*grants: dict[str, Any]) -> Route:
    (policy,) = make_engine(*grants).policies()
    return Route(policy, policy.devices[0], "telemetry")


def _parsed(payload: object) -> Parsed:
    parsed = Parsed(orjson.dumps(payload))
    parsed.parse()
    return parsed


def test_fields_are_released_in_the_shadows_more_protective_form() -> None:
    route = _route({"fields": {"*": "keep"}}, {"fields": {"n": "pseudonymise"}})
    own, other = route.policy.grants
    walk = Walk(own, KEY, "up/dev", [], [])
    alone = release_fields(route, walk, _parsed({"n": "Anna", "t": 1}), key=KEY, shadows=[])
    assert isinstance(alone, Decision) and orjson.loads(alone.payload or b"")["n"] == "Anna"
    assert other.shadow is not None
    got = release_fields(
        route, walk, _parsed({"n": "Anna", "t": 1}), key=KEY, shadows=[other.shadow]
    )
    assert isinstance(got, Decision) and got.raised_by == ("g2",)
    assert orjson.loads(got.payload or b"")["n"] != "Anna"
    assert got.altered == (Alteration("n", "pseudonymise"),) and got.shared == ("t",)


def test_an_empty_release_is_held_with_the_grants_reason() -> None:
    route = _route({"fields": {"t": "keep"}})
    walk = Walk(route.policy.grants[0], None, "up/dev", [], [])
    got = release_fields(route, walk, _parsed({"u": 1}), key=None, shadows=[])
    assert isinstance(got, Held) and got.reason.code == "nothing_released"


def test_the_whole_body() -> None:
    route = _route({"fields": {"$payload": "keep"}})
    walk = Walk(route.policy.grants[0], None, "up/dev", [], [])
    got = release_whole(route, walk, _parsed({"a": 23.20}))
    assert isinstance(got, Decision) and got.shared == ("$payload",)
    assert got.payload == b'{"a":23.2}'  # the exact bytes the device sent (orjson wrote 23.2)


def test_the_topic_shares_or_pseudonymises_each_level_the_grant_names() -> None:
    route = _route(
        {"topic": "up/{customer}/{device}/{user}", "topic_levels": {"user": "pseudonymise"}},
        {"recipient": "r2", "topic": "plain/{device}/{user}", "topic_levels": {"user": "keep"}},
    )
    hidden, plain = route.policy.grants
    assert KEY is not None
    got = release_topic(route, hidden, "acme/dev/jjolie", {"user": "jjolie"}, KEY)
    assert got[0] == f"up/acme/dev/{pseudonymise('jjolie', KEY)}" and "jjolie" not in got[0]
    assert got[1] == [] and [a.path for a in got[2]] == ["$topic.user"]
    got = release_topic(route, plain, "acme/dev/jjolie", {"user": "jjolie"}, None)
    assert got == ("plain/dev/jjolie", ["$topic.user"], [])


def test_a_topic_without_device_levels_is_rendered_once_per_route() -> None:
    route = _route({"topic": "up/{customer}/{device}/{stream}"})
    grant = route.policy.grants[0]
    assert release_topic(route, grant, "acme/dev/a", {"user": "a"}, None) == (
        "up/acme/dev/telemetry",
        [],
        [],
    )
    assert route.topics[grant.id] == "up/acme/dev/telemetry"
    route.topics[grant.id] = "cached"  # the second message reads the cache, not the template
    assert release_topic(route, grant, "acme/dev/b", {"user": "b"}, None)[0] == "cached"


def _decision(grant: str, shared: tuple[str, ...], withheld: tuple[str, ...]) -> Decision:
    return Decision(
        "acme", "dev", "r1", Outcome.SHARED, grant=grant, shared=shared, withheld=withheld
    )


def test_besides_keeps_back_only_what_no_release_carries() -> None:
    a = _decision("g1", ("x", "y"), ("z",))
    b = _decision("g2", ("z",), ("x", "y", "w"))
    got = besides([a, b])
    assert [d.withheld for d in got] == [(), ("w",)]
    assert [d.shared for d in got] == [("x", "y"), ("z",)]
    whole = _decision("g3", ("$payload",), ())
    assert [d.withheld for d in besides([b, whole])] == [(), ()]
