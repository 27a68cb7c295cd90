"""The route table: topic to device stream, the grants to try per recipient, overlaps refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policies.compiler import CompiledPolicy, compile_policy
from policies.decision import Outcome
from policies.engine import Engine
from policies.errors import PolicyError
from policies.loader import load_policy_text
from policies.message import Message
from policies.routes import RouteTable

from .conftest import NOW, Keys, make_engine, policy_dict

TOPIC = "acme/dev/jjolie"


def msg(payload: bytes, topic: str = TOPIC) -> Message:
    return Message(topic, payload, NOW)


def one(engine: Engine, payload: bytes, topic: str = TOPIC) -> Any:
    (decision,) = engine.evaluate(msg(payload, topic), NOW)
    return decision


def test_unknown_device() -> None:
    engine = make_engine({"fields": {"t": "keep"}})
    decision = one(engine, b'{"t":1}', topic="other/dev")
    assert (decision.customer, decision.recipient, decision.reason.code) == (
        None,
        None,
        "unknown_device",
    )
    assert decision.withheld == ("$payload",)


def test_no_grant_for_anyone_and_for_one_recipient() -> None:
    engine = make_engine({"streams": ["status"], "fields": {"$payload": "keep"}})
    (decision,) = engine.evaluate(msg(b'{"t":1}'), NOW)
    assert decision.recipient is None and decision.reason.code == "no_grant"
    assert decision.withheld == ("t",) and decision.customer == "acme"
    engine = make_engine(
        {"fields": {"t": "keep"}},
        {"recipient": "r2", "streams": ["status"], "fields": {"$payload": "keep"}},
    )
    r1, r2 = engine.evaluate(msg(b'{"t":1}'), NOW)
    assert (r1.recipient, r1.outcome) == ("r1", Outcome.SHARED)
    assert (r2.recipient, r2.reason.code, r2.grant) == ("r2", "no_grant", None)


def test_overlapping_devices_are_refused(examples: list[Any]) -> None:
    other = policy_dict({"fields": {"t": "keep"}}, customer="copycat")
    other["devices"][0]["topics"] = [{"pattern": "bakery/+/telemetry"}]
    copy = compile_policy(load_policy_text(yaml.safe_dump(other)), {"r1": "R1"})
    with pytest.raises(PolicyError, match="overlaps 'bakery/oven-1/telemetry'"):
        Engine([*examples, copy], Keys())


def test_device_for() -> None:
    engine = make_engine({"fields": {"t": "keep"}})
    ref = engine.device_for(TOPIC + "/status")
    assert ref is not None
    assert (ref.customer, ref.device, ref.name, ref.kind, ref.stream, dict(ref.captures)) == (
        "acme",
        "dev",
        "Device",
        "sensor",
        "status",
        {"user": "jjolie"},
    )
    assert engine.device_for("acme/dev") is None


def test_exact_and_pattern_topics(examples: list[CompiledPolicy]) -> None:
    table = RouteTable(examples)
    hit = table.lookup("bakery/oven-1/telemetry")
    assert hit is not None
    route, captures = hit
    assert (route.policy.customer, route.device.id, route.stream) == (
        "baeckerei-schmidt",
        "oven-1",
        "telemetry",
    )
    assert dict(captures) == {}
    door = table.lookup("bakery/back-door/badge/42")
    assert door is not None and (door[0].device.id, door[0].stream) == ("back-door", "access")
    assert table.lookup("bakery/oven-1/telemetry/extra") is None
    assert table.lookup("nobody/anything") is None


def test_a_wildcard_first_level_never_takes_another_customers_namespace() -> None:
    """``{site}/+/+/x`` matches ``devices/mueller/meter-2/x``, a topic in customer mueller's
    namespace (where the gateway registers mueller's devices): never acme's, in whatever order
    the files and the registry changed; acme's own namespace and any other topic are acme's."""
    doc = policy_dict({"fields": {"t": "keep"}})
    doc["devices"][0]["topics"] = [{"pattern": "{site}/+/+/x"}]
    table = RouteTable([compile_policy(load_policy_text(yaml.safe_dump(doc)), {"r1": "R1"})])
    assert table.lookup("devices/mueller/meter-2/x") is None
    for topic in ("devices/acme/dev/x", "plant/a/b/x", "devices2/a/b/x"):
        hit = table.lookup(topic)
        assert hit is not None and hit[0].policy.customer == "acme", topic


def test_a_wildcard_first_level_and_another_customers_namespace_do_not_compete() -> None:
    """Both run (before, the table refused whichever came second); a topic in mueller's
    namespace is mueller's, the rest acme's. acme's own namespace pattern under the same
    wildcard still competes and is refused."""
    wild = policy_dict({"fields": {"t": "keep"}})
    wild["devices"][0]["topics"] = [{"pattern": "{site}/+/+/x"}]
    owner = policy_dict({"fields": {"t": "keep"}}, customer="mueller")
    owner["devices"][0]["topics"] = [{"pattern": "devices/mueller/meter-2/{stream}"}]
    acme, mueller = (
        compile_policy(load_policy_text(yaml.safe_dump(d)), {"r1": "R1"}) for d in (wild, owner)
    )
    for order in ([acme, mueller], [mueller, acme]):
        table = RouteTable(order)
        hit = table.lookup("devices/mueller/meter-2/x")
        assert hit is not None and hit[0].policy.customer == "mueller"
        assert table.lookup("devices/mueller/meter-9/x") is None
        other = table.lookup("plant/a/b/x")
        assert other is not None and other[0].policy.customer == "acme"
    wild["devices"][0]["topics"].append({"pattern": "devices/acme/dev/x", "stream": "status"})
    both = compile_policy(load_policy_text(yaml.safe_dump(wild)), {"r1": "R1"})
    with pytest.raises(PolicyError, match="overlaps"):
        RouteTable([both])
