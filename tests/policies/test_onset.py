"""Which overlapping grant began to apply after a release was decided (policies/onset.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from policies.decision import Reason
from policies.engine import Engine
from policies.onset import began_applying, stopped_applying
from tests.policies.conftest import Keys, compile_text

POLICY = """
einblick_policy: 1
customer: c
name: C
language: en
timezone: UTC
devices:
  - id: d
    name: D
    kind: sensor
    topics: [{pattern: "c/d", stream: s}]
grants:
  - id: a
    recipient: r1
    purpose: {de: "A", en: "A"}
    legal_basis: contract
    devices: [d]
    topic: "a/{device}"
    fields: {x: keep}
  - id: b
    recipient: r1
    purpose: {de: "B", en: "B"}
    legal_basis: consent
    consent: {given_by: "P", given_at: 2026-03-01T00:00:00Z}
    devices: [d]
    topic: "b/{device}"
    hours: ["08:00-18:00"]
    fields: {x: {round: 5}}
  - id: other-recipient
    recipient: r2
    purpose: {de: "O", en: "O"}
    legal_basis: contract
    devices: [d]
    topic: "o/{device}"
    hours: ["08:00-18:00"]
    fields: {x: {round: 10}}
"""
EARLY = datetime(2026, 6, 3, 7, 0, tzinfo=UTC)
NINE = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
TEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
EVENING = datetime(2026, 6, 3, 19, 0, tzinfo=UTC)


def setup() -> Engine:
    return Engine([compile_text(POLICY)], Keys())


def test_a_grant_whose_hours_began_after_the_decision_is_named() -> None:
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    (onset,) = began_applying(engine, policy, "a", EARLY, NINE)
    assert onset is not None and (onset.grant.id, onset.why) == ("b", "hours")
    # Inside its hours at both times: it applied at the decision too.
    assert began_applying(engine, policy, "a", NINE, TEN) == ()
    # Outside them now: it constrains nothing (the row is at most more protective).
    assert began_applying(engine, policy, "a", NINE, EVENING) == ()
    # Only grants for the same recipient count: "other-recipient" began too, and is not named.
    assert began_applying(engine, policy, "b", EARLY, NINE) == ()


def test_a_grant_whose_consent_record_began_after_the_decision_is_named() -> None:
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    before = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)  # inside the hours, before the consent
    (onset,) = began_applying(engine, policy, "a", before, NINE)
    assert onset is not None and (onset.grant.id, onset.why) == ("b", "validity")


def test_a_hold_ended_after_the_decision_is_named_with_what_it_was() -> None:
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    engine.withdraw("c", "b", NINE, Reason("objected"))
    # Held back now: it constrains nothing.
    assert began_applying(engine, policy, "a", NINE, TEN) == ()
    engine.give("c", "b", TEN.replace(minute=5))
    (onset,) = began_applying(engine, policy, "a", TEN, TEN.replace(minute=30))
    assert onset is not None and onset.why == "released" and onset.hold == Reason("objected")
    # A release decided after the hold ended was decided with the grant.
    assert began_applying(engine, policy, "a", TEN.replace(minute=6), TEN.replace(minute=30)) == ()


def test_a_restarted_engine_learns_when_a_hold_ended_from_the_recorded_event() -> None:
    # gateway/rights/consent.py hands the last "give"/"lift" back at start with what it ended.
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    engine.give("c", "b", NINE, Reason("withdrawn"))  # not held back in this engine
    (onset,) = began_applying(engine, policy, "a", NINE.replace(minute=0, hour=8), TEN)
    assert onset is not None and onset.hold == Reason("withdrawn")
    # Without the recorded event, a plain "give" of a grant not held back changes nothing.
    fresh = setup()
    fresh.give("c", "b", NINE)
    assert began_applying(fresh, policy, "a", NINE.replace(hour=8), TEN) == ()


def test_a_grant_whose_hours_ended_after_the_decision_is_named() -> None:
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    (stop,) = stopped_applying(engine, policy, "a", NINE, EVENING)
    assert stop is not None and (stop.grant.id, stop.why) == ("b", "hours")
    # Outside its hours at both times, or inside them at both: nothing stopped.
    assert stopped_applying(engine, policy, "a", EARLY, EVENING) == ()
    assert stopped_applying(engine, policy, "a", NINE, TEN) == ()
    # Only grants for the same recipient count.
    assert stopped_applying(engine, policy, "b", NINE, EVENING) == ()


def test_a_hold_is_named_only_when_it_began_after_the_decision() -> None:
    engine = setup()
    policy = engine.policy("c")
    assert policy is not None
    engine.withdraw("c", "b", TEN, Reason("objected"))
    (stop,) = stopped_applying(engine, policy, "a", NINE, TEN.replace(minute=30))
    assert stop is not None and (stop.why, stop.reason) == ("held", Reason("objected"))
    # Decided while held back: it did not apply then.
    assert (
        stopped_applying(engine, policy, "a", TEN.replace(minute=1), TEN.replace(minute=30)) == ()
    )
    # A hold that ended after the decision but began before it covered the decision too.
    engine.give("c", "b", TEN.replace(minute=2))
    engine.withdraw("c", "b", TEN.replace(minute=3))
    assert (
        stopped_applying(engine, policy, "a", TEN.replace(minute=1), TEN.replace(minute=30)) == ()
    )
    assert stopped_applying(engine, policy, "a", NINE, TEN.replace(minute=30)) != ()
    # Known only by its end (a restart that handed back only the last event): not certain.
    fresh = setup()
    fresh.give("c", "b", TEN.replace(minute=2), Reason("objected"))
    fresh.withdraw("c", "b", TEN.replace(minute=3))
    assert stopped_applying(fresh, policy, "a", NINE, TEN.replace(minute=30)) == ()
