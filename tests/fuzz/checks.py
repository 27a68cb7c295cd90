"""What every fuzz target and property checks, on the real engine and the example policies.

- ``Engine.evaluate`` returns decisions and never raises; decisions withheld by the engine's
  safety net (``internal_error``) leak nothing but are counted and reported as bugs;
- every explanation renders, in German and English;
- a released payload carries only paths its decision says were shared or altered, none it says
  were withheld, and only paths a field of the deciding grant covers (checked against the
  policy, not against the engine's own account);
- ``SECRET`` — planted by the structured targets under keys no grant names — never appears in a
  released payload or an upstream topic, unless the grant releases the whole body;
- an upstream topic is a valid MQTT topic name (no wildcard, no NUL, not empty).

A failed check raises ``Leak`` (a withheld field got out) or ``AssertionError`` (anything else).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from policies.compiler import CompiledGrant, CompiledPolicy, compile_policy
from policies.decision import Decision, Outcome
from policies.engine import Engine
from policies.errors import PolicyError
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.listing import leaves
from policies.loader import load_policy, load_policy_text
from policies.message import Message

__all__ = [
    "AMBIGUOUS_PATHS",
    "INTERNAL_ERRORS",
    "NOW",
    "SECRET",
    "TOPICS",
    "Leak",
    "check_message",
    "check_policy_text",
    "example_engine",
    "example_policies",
    "inside_a_grant",
]

SECRET = "SECRET-5b1e"
NOW = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)  # a Wednesday, inside every example's hours

# Every topic the example policies know, plus neighbours a hostile device might try.
TOPICS = (
    "bakery/oven-1/telemetry",
    "bakery/oven-1/status",
    "bakery/oven-2/telemetry",
    "bakery/back-door/events",
    "bakery/back-door/a/b/c",
    "owntracks/jan/van-01",
    "owntracks/jan/van-01/event",
    "owntracks/jan/van-02/status",
    "zigbee2mqtt/berg-meeting-room",
    "zigbee2mqtt/berg-office-east",
    "zigbee2mqtt/bridge/state",
    "tele/berg-meter/SENSOR",
    "tele/berg-meter/STATE",
    "tele/berg-meter/LWT",
)


class Leak(AssertionError):
    """Something the policy withholds left in a released payload or topic."""


class _Keys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return f"{customer}:{recipient}".encode().ljust(32, b"k")


@cache
def example_policies() -> tuple[CompiledPolicy, ...]:
    return tuple(compile_policy(load_policy(example_path(n)), RECIPIENTS) for n in EXAMPLES)


def example_engine() -> Engine:
    return Engine(list(example_policies()), _Keys())


_rotation: dict[str, Any] = {"engine": None, "count": 0}


def rotating_engine() -> Engine:
    """The examples' engine for the next input, rebuilt every 20,000 inputs so its rate-limit
    and window state stays bounded over a long fuzzing run."""
    if _rotation["count"] % 20_000 == 0:
        _rotation["engine"] = example_engine()
    _rotation["count"] += 1
    engine: Engine = _rotation["engine"]
    return engine


@cache
def _grants() -> dict[tuple[str, str], CompiledGrant]:
    return {(p.customer, g.id): g for p in example_policies() for g in p.grants}


_INDEX = re.compile(r"\[\d+\]")


def _tokens(path: str) -> list[str]:
    return [t for t in _INDEX.sub(".[]", path).split(".") if t]


@cache
def _patterns(customer: str, grant_id: str) -> tuple[tuple[str, ...], ...] | None:
    """The field patterns of a grant as token tuples; None if it releases whole bodies."""
    grant = _grants()[(customer, grant_id)]
    spec = grant.spec
    if spec.payload == "opaque" or spec.aggregate is not None or "$payload" in spec.fields:
        return None
    out = []
    for name, treatment in spec.fields.items():
        out.append(tuple(_tokens(name.replace("[]", "[0]"))))
        coarsen = getattr(treatment, "coarsen", None)
        companion = getattr(coarsen, "lon", None)
        if isinstance(companion, str):
            out.append(tuple(_tokens(companion)))
    return tuple(out)


def _granted(path: str, patterns: Iterable[tuple[str, ...]]) -> bool:
    tokens = _tokens(path)
    for pattern in patterns:
        if len(pattern) <= len(tokens) and all(
            p == t or (p == "*" and t != "[]") for p, t in zip(pattern, tokens, strict=False)
        ):
            return True
    return False


def _covered(path: str, paths: Iterable[str]) -> bool:
    """``path`` is one of ``paths`` or inside one, array indices aside: a released array holds
    only its released elements, so ``errors[2].code`` may leave as ``errors[0].code``."""
    path = _INDEX.sub("[]", path)
    for released in (_INDEX.sub("[]", p) for p in paths):
        if path == released or path.startswith((released + ".", released + "[")):
            return True
    return False


@cache
def granted_anywhere() -> tuple[tuple[str, ...], ...]:
    """The field patterns of every example grant that names fields."""
    out: list[tuple[str, ...]] = []
    for customer, grant_id in _grants():
        out.extend(_patterns(customer, grant_id) or ())
    return tuple(out)


def inside_a_grant(path: str) -> bool:
    """True when some example grant releases ``path`` (or a field enclosing it)."""
    return _granted(path, granted_anywhere())


# The engine's safety net (any failure: withheld, Reason internal_error) is not a crash and leaks
# nothing, but each one is a bug to report: counted here, printed by the runner.
INTERNAL_ERRORS: Counter[str] = Counter()
# Paths a decision names as both released and withheld: two different keys spelled alike.
AMBIGUOUS_PATHS: Counter[str] = Counter()


def check_decision(decision: Decision, *, planted: bool, valid_topic: bool = True) -> None:
    if decision.reason is not None and decision.reason.code == "internal_error":
        INTERNAL_ERRORS[decision.reason.params.get("error", "?")] += 1
    if decision.outcome is Outcome.WITHHELD:
        assert decision.payload is None, decision
        return
    assert decision.payload is not None and decision.topic is not None, decision
    topic = decision.topic
    if valid_topic:
        assert topic and "+" not in topic and "#" not in topic and "\0" not in topic, topic
    whole = decision.opaque or "$payload" in decision.shared
    if planted and not whole and SECRET in topic:
        raise Leak(f"{SECRET} in the upstream topic {topic!r}")
    if whole:
        return
    try:
        root = orjson.loads(decision.payload)
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"a field release is not JSON: {decision.payload[:80]!r}") from exc
    released = list(decision.shared) + [a.path for a in decision.altered]
    found = leaves(root, "")
    for path in found:
        if not _covered(path, released):
            raise Leak(f"{path} left but the decision names only {released}")
        if _covered(path, decision.withheld) and _covered(path, released):
            AMBIGUOUS_PATHS[path] += 1  # keys like "", "a.b", "x[0]" spell the same path
        elif _covered(path, decision.withheld):
            raise Leak(f"{path} left but the decision says it was withheld")
    assert decision.customer is not None and decision.grant is not None
    patterns = _patterns(decision.customer, decision.grant)
    if patterns is not None:
        for path in found:
            if not _granted(path, patterns):
                raise Leak(f"{path} left; grant {decision.grant} has no field for it")
        if planted and SECRET.encode() in decision.payload:
            raise Leak(f"{SECRET} left through grant {decision.grant}: {decision.payload[:200]!r}")


def check_message(engine: Engine, topic: str, payload: bytes, *, planted: bool = False) -> int:
    """Evaluate one message and check every decision; returns how many were released."""
    decisions = engine.evaluate(Message(topic, payload, NOW), NOW)
    assert isinstance(decisions, list) and decisions, decisions
    released = 0
    valid_topic = bool(topic) and not any(c in topic for c in "+#\0")
    for decision in decisions:
        check_decision(decision, planted=planted, valid_topic=valid_topic)
        for lang in ("de", "en"):
            text = engine.explain(decision, lang)
            assert isinstance(text, str) and text, decision
            if planted and decision.outcome is Outcome.WITHHELD and SECRET in text:
                raise Leak(f"{SECRET} in an explanation: {text[:200]!r}")
        released += decision.outcome is not Outcome.WITHHELD
    return released


def check_policy_text(text: str) -> bool:
    """Load, compile and run a policy from text: a PolicyError is fine, anything else is not.
    Returns True when the text was a valid policy."""
    try:
        document = load_policy_text(text, "fuzz.yaml")
        compiled = compile_policy(document, RECIPIENTS)
    except PolicyError as exc:
        rendered = str(exc)
        assert rendered.startswith("fuzz.yaml"), rendered
        return False
    engine = Engine([compiled], _Keys())
    for device in compiled.devices:
        for topic in device.topics:
            concrete = re.sub(r"\{[^}]*\}", "x", topic.pattern.pattern)
            concrete = concrete.replace("+", "x").replace("#", "x")
            body = orjson.dumps({"a": 1, "operator": SECRET, "ts": "2026-06-03T09:30:12Z"})
            for decision in engine.evaluate(Message(concrete, body, NOW), NOW):
                if decision.reason is not None and decision.reason.code == "internal_error":
                    INTERNAL_ERRORS[decision.reason.params.get("error", "?")] += 1
                engine.explain(decision, "de")
                engine.explain(decision, "en")
    return True
