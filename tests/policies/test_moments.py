"""While the system clock is behind the log's time, a grant releases only what it releases at both
moments (``policies.moments``); where the two disagree the recipient gets nothing, and says why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from policies.decision import Decision, Outcome
from policies.engine import Engine
from policies.message import Message
from policies.moments import clock_behind, differs, overlapping

from .conftest import NOW, make_engine

TOPIC = "acme/dev/anna"
BEHIND = NOW - timedelta(days=30)  # the system clock, a month behind the log's time
CONSENT = {
    "fields": {"t": "keep"},
    "legal_basis": "consent",
    "consent": {"given_by": "Anna", "given_at": "2026-05-20T00:00:00Z"},
}
HOURS = {"fields": {"t": "keep"}, "hours": ["08:00-18:00"]}  # Berlin: NOW is 11:30


def decide(engine: Engine, now: datetime = NOW, wall: datetime | None = None) -> list[Decision]:
    also = () if wall is None else (wall,)
    return engine.evaluate(Message(TOPIC, b'{"t":1}', now), now, also=also)


def only(engine: Engine, now: datetime = NOW, wall: datetime | None = None) -> Decision:
    (decision,) = decide(engine, now, wall)
    return decision


def grant(engine: Engine, grant_id: str = "g1") -> Any:
    policy = engine.policy("acme")
    assert policy is not None
    return policy.grant(grant_id)


def test_what_differs_at_the_two_moments() -> None:
    consent = grant(make_engine(CONSENT))
    assert differs(consent, NOW, BEHIND, NOW) == "consent"  # given between them
    assert differs(consent, NOW, NOW - timedelta(days=1), NOW) is None  # given before both
    valid = grant(make_engine({"fields": {"t": "keep"}, "valid": {"from": "2026-05-20T00:00:00Z"}}))
    assert differs(valid, NOW, BEHIND, NOW) == "validity"
    ended = grant(
        make_engine({"fields": {"t": "keep"}, "valid": {"until": "2026-05-20T00:00:00Z"}})
    )
    assert differs(ended, NOW, BEHIND, NOW) == "validity"  # in force only at the clock's time
    hours = grant(make_engine(HOURS))
    assert differs(hours, NOW, NOW - timedelta(hours=10), NOW) == "hours"  # 01:30 in Berlin
    assert differs(hours, NOW, NOW - timedelta(days=2), NOW) is None  # 11:30 two days before
    # The hours moment is shifted by the same distance on the clock's side.
    at = NOW + timedelta(hours=8)  # 19:30 in Berlin: outside
    assert differs(hours, at, at - timedelta(hours=1), NOW) is None  # both judged in hours
    assert differs(hours, at, at - timedelta(hours=4), NOW) == "hours"  # 07:30 there
    # No hours, no time limits: the moments cannot disagree.
    assert differs(grant(make_engine({"fields": {"t": "keep"}})), NOW, BEHIND, NOW) is None


def test_a_consent_given_after_the_clock_s_time_releases_nothing_while_it_is_behind() -> None:
    engine = make_engine(CONSENT)
    assert only(engine).outcome is Outcome.SHARED  # the clock agrees (or is not behind)
    assert only(engine, wall=NOW - timedelta(days=1)).outcome is Outcome.SHARED
    held = only(engine, wall=BEHIND)
    assert held.outcome is Outcome.WITHHELD and held.payload is None and held.topic is None
    assert held.reason is not None and held.reason.code == "clock_behind"
    # No reading of the clock in it: one text per grant and cause, stored once however long.
    assert dict(held.reason.params) == {"what": "consent", "grant": "g1"}
    assert held.recipient == "r1" and held.grant == "g1" and held.withheld == ("t",)
    english, german = engine.explain(held, "en"), engine.explain(held, "de")
    assert "system clock is behind the newest entry of its log, so the time is" in english
    assert "whether the consent to grant “g1” is in force" in english
    assert "Systemuhr des Gateways liegt hinter dem neuesten Eintrag" in german
    assert "ob die Einwilligung zur Freigabe „g1“ gilt" in german
    assert "{" not in english + german


def test_allowed_hours_are_judged_at_both_moments() -> None:
    engine = make_engine(HOURS)
    # The log's time stands still at 11:30 while the clock says 01:30: not released at night.
    held = only(engine, wall=NOW - timedelta(hours=10))
    assert held.reason is not None and held.reason.code == "clock_behind"
    assert held.reason.params["what"] == "hours"
    assert "whether the moment lies within the allowed hours of grant “g1”" in engine.explain(
        held, "en"
    )
    assert only(engine, wall=NOW - timedelta(hours=1)).outcome is Outcome.SHARED


def test_a_grant_that_applies_at_neither_moment_withholds_nothing_else() -> None:
    """g2 (more protective, hours 08-18) has expired long ago, or is withdrawn: its hours
    differ between the two moments, but it applies at neither, so g1's release stands."""
    g2 = {"fields": {"t": {"round": 10}}, "hours": ["08:00-18:00"]}
    expired = make_engine(
        {"fields": {"t": "keep"}}, {**g2, "valid": {"until": "2025-01-01T00:00Z"}}
    )
    night = NOW - timedelta(hours=10)  # 01:30 in Berlin
    assert [d.outcome for d in decide(expired, wall=night)] == [Outcome.SHARED]
    withdrawn = make_engine({"fields": {"t": "keep"}}, g2)
    withdrawn.withdraw("acme", "g2", NOW - timedelta(days=1))
    assert [d.outcome for d in decide(withdrawn, wall=night)] == [Outcome.SHARED]
    # A grant in force at neither moment though its hours differ: not the clock's doing either.
    later = make_engine({**HOURS, "valid": {"from": "2027-01-01T00:00:00Z"}})
    decision = only(later, wall=night)
    assert decision.reason is not None and decision.reason.code == "not_yet_valid"


def test_a_refusal_at_the_log_s_time_that_the_clock_s_time_would_lift_is_the_clock_s() -> None:
    """In force at the clock's time, expired at the log's: which is true depends on which time
    is right, so the entry says that rather than "expired"."""
    expired = {"fields": {"t": "keep"}, "valid": {"until": "2026-05-20T00:00:00Z"}}
    decision = only(make_engine(expired), wall=BEHIND)
    assert decision.reason is not None and decision.reason.code == "clock_behind"
    assert decision.reason.params["what"] == "validity"
    assert only(make_engine(expired)).reason == decision.reason.__class__(
        "expired", {"what": "validity"}
    )
    engine = make_engine(HOURS)
    evening = NOW + timedelta(hours=8)  # 19:30 in Berlin: outside at both moments
    decision = only(engine, now=evening, wall=evening - timedelta(hours=1))
    assert decision.reason is not None and decision.reason.code == "outside_hours"


def test_a_grant_overlapping_the_releasing_one_counts() -> None:
    """g2 gives r1 the same field more protectively but only from 20 May: at the log's time it
    applies (the rounded value leaves), at the clock's it would not (the exact one would)."""
    engine = make_engine(
        {"fields": {"t": "keep"}},
        {"fields": {"t": {"round": 10}}, "valid": {"from": "2026-05-20T00:00:00Z"}},
    )
    policy = engine.policy("acme")
    assert policy is not None
    assert [g.id for g in overlapping(policy, "g1")] == ["g1", "g2"]
    assert [d.outcome for d in decide(engine)] != [Outcome.WITHHELD]
    (held,) = decide(engine, wall=BEHIND)
    assert held.reason is not None and held.reason.code == "clock_behind"
    assert held.grant == "g2" and held.reason.params["what"] == "validity"
    assert clock_behind(overlapping(policy, "g1"), NOW, (BEHIND,)) == (
        grant(engine, "g2"),
        held.reason,
    )
    assert clock_behind(overlapping(policy, "g1"), NOW, ()) is None  # the clock is not behind
    assert clock_behind(overlapping(policy, "g1"), NOW, (NOW - timedelta(days=1),)) is None
    # Judged at every moment given: the second one disagrees.
    assert clock_behind(overlapping(policy, "g1"), NOW, (NOW - timedelta(days=1), BEHIND))


def test_withholding_for_the_clock_leaves_no_state_behind() -> None:
    """A rate limit counts only releases: one withheld for the clock does not start its wait."""
    engine = make_engine({**HOURS, "rate_limit": "60s"})
    assert only(engine, wall=NOW - timedelta(hours=10)).outcome is Outcome.WITHHELD
    assert only(engine, now=NOW + timedelta(seconds=1)).outcome is Outcome.SHARED


def test_a_closed_window_s_summary_is_judged_at_both_moments() -> None:
    aggregate = {"aggregate": {"window": "5m", "fields": {"t": ["mean"]}}}
    engine = make_engine({**aggregate, **{"hours": ["08:00-18:00"]}})
    for i in range(3):
        only(engine, now=NOW + timedelta(seconds=i))
    closed = NOW + timedelta(minutes=10)
    (held,) = engine.flush(closed, (closed - timedelta(hours=10),))
    assert held.outcome is Outcome.WITHHELD and held.payload is None
    assert held.reason is not None and held.reason.code == "clock_behind"
    engine = make_engine({**aggregate, **{"hours": ["08:00-18:00"]}})
    for i in range(3):
        only(engine, now=NOW + timedelta(seconds=i))
    (summary,) = engine.flush(closed, (closed - timedelta(hours=1),))
    assert summary.outcome is not Outcome.WITHHELD and summary.payload is not None


def test_with_no_good_reading_of_the_clock_what_may_change_later_is_uncertain() -> None:
    """A gateway started while its clock was behind knows only that the real time is some time
    after the log's: hours cannot be judged, nor a bound of validity or consent still ahead."""
    unknown = (BEHIND, None)
    assert differs(grant(make_engine(HOURS)), NOW, None, NOW) == "hours"
    assert differs(grant(make_engine(CONSENT)), NOW, None, NOW) is None  # given before: stays
    until = {"fields": {"t": "keep"}, "valid": {"until": "2026-07-01T00:00:00Z"}}
    assert differs(grant(make_engine(until)), NOW, None, NOW) == "validity"
    ended = {"fields": {"t": "keep"}, "valid": {"until": "2026-05-01T00:00:00Z"}}
    assert differs(grant(make_engine(ended)), NOW, None, NOW) is None  # over: stays over
    # Over, with hours or another bound still ahead: it applies at no later time either.
    assert differs(grant(make_engine({**ended, **HOURS})), NOW, None, NOW) is None
    lapsed = {
        **CONSENT,
        "valid": {"until": "2029-01-01T00:00:00Z"},
        "consent": {**CONSENT["consent"], "until": "2026-05-25T00:00Z"},
    }
    assert differs(grant(make_engine(lapsed)), NOW, None, NOW) is None
    consent_until = {**CONSENT, "consent": {**CONSENT["consent"], "until": "2026-07-01T00:00Z"}}
    assert differs(grant(make_engine(consent_until)), NOW, None, NOW) == "consent"
    plain = make_engine({"fields": {"t": "keep"}})
    assert decide(plain)[0].outcome is Outcome.SHARED
    assert plain.evaluate(Message(TOPIC, b'{"t":1}', NOW), NOW, also=unknown)[0].payload is not None
    hours = make_engine(HOURS)
    (held,) = hours.evaluate(Message(TOPIC, b'{"t":1}', NOW), NOW, also=unknown)
    assert held.reason is not None and held.reason.code == "clock_behind"


def test_a_grant_whose_own_condition_fails_counts_at_no_moment() -> None:
    """g2 (hours 08-18) applies only when t is above 100: for t=1 it applies at no time, so
    g1's release stands while the clock is behind."""
    g2 = {"fields": {"u": "keep"}, "hours": ["08:00-18:00"], "when": [{"field": "t", "above": 100}]}
    engine = make_engine({"fields": {"t": "keep"}}, g2)
    night = NOW - timedelta(hours=10)
    assert [d.outcome for d in decide(engine, wall=night)] == [Outcome.SHARED]
    hot = engine.evaluate(Message(TOPIC, b'{"t":101}', NOW), NOW, also=(night,))
    assert [d.reason.code if d.reason else None for d in hot] == ["clock_behind"]


def test_rate_limits_measure_on_the_clock_no_one_sets() -> None:
    """While the system clock is behind, the log's time moves a microsecond per decision: a
    rate limit measured in it would hold back every message after the first, saying each "came
    too soon". Measured by the gateway's monotonic clock (``Message.elapsed``), it spaces them
    as the policy says, and a step of the system clock changes nothing."""
    engine = make_engine({"fields": {"t": "keep"}, "rate_limit": "60s"})

    def at(elapsed: float, now: datetime = NOW) -> Decision:
        (decision,) = engine.evaluate(Message(TOPIC, b'{"t":1}', now, False, elapsed), now)
        return decision

    assert at(1000.0).outcome is Outcome.SHARED
    limited = at(1030.0, NOW + timedelta(hours=5))  # the system clock jumped: 30 s passed
    assert limited.reason is not None and limited.reason.code == "rate_limited"
    assert at(1061.0, NOW + timedelta(microseconds=2)).outcome is Outcome.SHARED  # 61 s passed
