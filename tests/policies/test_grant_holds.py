"""The holds on grants: held back now and why, and the holds that ended (bounded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from policies.decision import Reason
from policies.grant_holds import HOLDS_KEPT, WITHDRAWN, GrantHolds

T0 = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
OBJECTED = Reason("objected")


def test_a_hold_says_since_when_and_why_until_it_ends() -> None:
    holds = GrantHolds()
    assert holds.reason("acme", "g1") is None and holds.held("acme", "g1") is None
    holds.hold("acme", "g1", T0, None)
    assert holds.reason("acme", "g1") == WITHDRAWN
    assert holds.held("acme", "g1") == (T0, WITHDRAWN)
    assert holds.reason("acme", "g2") is None and holds.reason("other", "g1") is None
    holds.hold("acme", "g1", T0 + timedelta(seconds=1), OBJECTED)  # the later hold replaces
    assert holds.held("acme", "g1") == (T0 + timedelta(seconds=1), OBJECTED)
    assert holds.since() == {("acme", "g1"): T0 + timedelta(seconds=1)}
    holds.end("acme", "g1", T0 + timedelta(seconds=5), None)
    assert holds.reason("acme", "g1") is None and holds.since() == {}
    assert holds.ended("acme", "g1") == (
        (T0 + timedelta(seconds=1), T0 + timedelta(seconds=5), OBJECTED),
    )


def test_an_end_older_than_the_hold_in_place_changes_nothing() -> None:
    holds = GrantHolds()
    holds.hold("acme", "g1", T0, None)
    holds.end("acme", "g1", T0 - timedelta(seconds=1), None)
    assert holds.reason("acme", "g1") == WITHDRAWN and holds.ended("acme", "g1") == ()


def test_released_since_names_the_hold_that_ended_after_the_time() -> None:
    holds = GrantHolds()
    holds.hold("acme", "g1", T0, OBJECTED)
    holds.end("acme", "g1", T0 + timedelta(seconds=10), None)
    assert holds.released_since("acme", "g1", T0 + timedelta(seconds=5)) == OBJECTED
    assert holds.released_since("acme", "g1", T0 + timedelta(seconds=10)) is None
    assert holds.released_since("acme", "g2", T0) is None


def test_an_end_handed_back_after_a_restart_is_remembered_without_its_start() -> None:
    holds = GrantHolds()
    holds.end("acme", "g1", T0, None)  # consent given that was never withdrawn: no trace
    assert holds.ended("acme", "g1") == ()
    holds.end("acme", "g1", T0, WITHDRAWN)
    assert holds.ended("acme", "g1") == ((None, T0, WITHDRAWN),)
    assert holds.released_since("acme", "g1", T0 - timedelta(seconds=1)) == WITHDRAWN


def test_only_the_latest_ended_holds_are_kept() -> None:
    holds = GrantHolds()
    for i in range(HOLDS_KEPT + 5):
        holds.hold("acme", "g1", T0 + timedelta(seconds=2 * i), None)
        holds.end("acme", "g1", T0 + timedelta(seconds=2 * i + 1), None)
    ended = holds.ended("acme", "g1")
    assert len(ended) == HOLDS_KEPT
    assert ended[0][0] == T0 + timedelta(seconds=10) and ended[-1][1] == T0 + timedelta(
        seconds=2 * (HOLDS_KEPT + 4) + 1
    )
