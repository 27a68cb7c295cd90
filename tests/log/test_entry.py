"""Entries before they are written: the one time unit, and the checks a draft must pass."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.errors import EntryInvalid
from gateway.log.entry import at_from_us, body_key, check_draft, us_from_at
from tests.log.conftest import make_draft


def test_microseconds_round_trip_exactly() -> None:
    at = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    assert us_from_at(at) == 1772355600123456
    assert at_from_us(us_from_at(at)) == at
    # Another offset is the same instant.
    berlin = at.astimezone(timezone(timedelta(hours=1)))
    assert us_from_at(berlin) == us_from_at(at)


def test_a_naive_time_is_refused_with_what_was_found() -> None:
    with pytest.raises(EntryInvalid, match="expected an aware UTC datetime, found naive"):
        us_from_at(datetime(2026, 3, 1, 9, 0))


@pytest.mark.parametrize(
    ("change", "field", "found"),
    [
        ({"kind": "gossip"}, "kind", "'gossip'"),
        ({"outcome": "leaked"}, "outcome", "'leaked'"),
        ({"customer": "_gateway"}, "customer", "reserved"),
        ({"source_digest": b"short"}, "source_digest", "found 5"),
    ],
)
def test_a_draft_that_cannot_be_recorded_says_which_field(
    change: dict[str, object], field: str, found: str
) -> None:
    draft = dataclasses.replace(make_draft(0), **change)  # type: ignore[arg-type]
    with pytest.raises(EntryInvalid) as caught:
        check_draft(draft)
    assert caught.value.field == field and found in str(caught.value)


def test_equal_bodies_share_a_key_and_different_ones_do_not() -> None:
    one, same = make_draft(0), make_draft(0)
    later = dataclasses.replace(same, at=same.at + timedelta(seconds=5))  # time is not body
    assert body_key(one) == body_key(later)
    assert body_key(one) != body_key(dataclasses.replace(one, text_en="other words"))
    check_draft(one)  # a good draft passes
