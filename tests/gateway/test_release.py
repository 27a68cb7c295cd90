"""Release at the end of the unit (gateway/messages/release.py): a grant that truncates a time to
the hour or day can hold its releases until that hour or day is over, on the policy's clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.log.entry import at_from_us
from gateway.messages.pseudonyms import Keyring
from gateway.messages.release import end_of_unit, release_at
from policies.describe import describe
from policies.engine import Engine
from policies.errors import PolicyError
from policies.message import Message
from tests.policies.conftest import compile_text

POLICY = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
timezone: Europe/Berlin
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - pattern: "bakery/oven-1/telemetry"
        stream: telemetry
grants:
  - id: hourly
    recipient: r1
    purpose: Baking statistics
    legal_basis: contract
    devices: [oven-1]
    release: end_of_unit
    fields:
      temperature: keep
      ts: {truncate: hour}
"""


@pytest.mark.parametrize(
    ("now", "unit", "end"),
    [
        # 13:17:05 in Berlin (CET, UTC+1) → 14:00 Berlin = 13:00 UTC.
        (
            datetime(2026, 12, 3, 12, 17, 5, tzinfo=UTC),
            "hour",
            datetime(2026, 12, 3, 13, tzinfo=UTC),
        ),
        # 00:30 on 4 December in Berlin: that day ends at midnight in Berlin (23:00 UTC).
        (datetime(2026, 12, 3, 23, 30, tzinfo=UTC), "day", datetime(2026, 12, 4, 23, tzinfo=UTC)),
        # 11:00 in Berlin: the UTC day ends after the Berlin one; an epoch time truncates in UTC.
        (datetime(2026, 12, 3, 10, 0, tzinfo=UTC), "day", datetime(2026, 12, 4, 0, tzinfo=UTC)),
        # The day the clocks go back (25 October 2026) is 25 hours long in Berlin.
        (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "day", datetime(2026, 10, 25, 23, tzinfo=UTC)),
        # The day the clocks go forward (29 March 2026) is 23 hours long.
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "day", datetime(2026, 3, 29, 22, tzinfo=UTC)),
        # The hour the clocks go back repeats 02:00-03:00: each of the two ends after 60 minutes.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "hour", datetime(2026, 10, 25, 1, tzinfo=UTC)),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "hour", datetime(2026, 10, 25, 2, tzinfo=UTC)),
    ],
)
def test_the_end_of_the_unit_is_on_the_policy_s_clock(
    now: datetime, unit: str, end: datetime
) -> None:
    assert end_of_unit(now, unit, "Europe/Berlin") == end


def test_a_release_of_such_a_grant_waits_for_the_end_of_its_hour() -> None:
    engine = Engine([compile_text(POLICY)], Keyring())
    now = datetime(2026, 12, 3, 12, 17, 5, tzinfo=UTC)
    message = Message("bakery/oven-1/telemetry", b'{"temperature": 180, "ts": 1796300225}', now)
    (decision,) = [d for d in engine.evaluate(message, now) if d.recipient == "r1"]
    assert decision.payload == b'{"temperature":180,"ts":1796299200}'
    held = release_at(engine, decision, now)
    assert held is not None and at_from_us(held) == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    immediate = Engine([compile_text(POLICY.replace("    release: end_of_unit\n", ""))], Keyring())
    (decision,) = [d for d in immediate.evaluate(message, now) if d.recipient == "r1"]
    assert release_at(immediate, decision, now) is None


def test_end_of_unit_without_an_hour_or_day_truncation_is_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_text(POLICY.replace("{truncate: hour}", "{truncate: minute}"))
    assert "no field here has {truncate: hour} or {truncate: day}" in str(caught.value)


def test_a_held_release_and_how_it_meets_the_hours_are_described() -> None:
    """The hold and the hours judged at the decision for a held release leaving on time
    (gateway/messages/sendtime_rules.py) are what ``policy describe`` tells the customer."""
    hours = POLICY.replace("    release:", '    hours: ["06:00-22:00"]\n    release:')
    english = describe(compile_text(hours.replace("{truncate: hour}", "{truncate: day}")), "en")
    assert (
        "Held until the end of each day (on the clock of Europe/Berlin and of UTC, whichever "
        "ends later), and a day's releases leave together" in english
    )
    assert (
        "A release decided inside these times leaves at that end even when it lies after them, "
        "if it can be sent within 1 minute of it; one sent later leaves only inside these times, "
        "else it is withheld" in english
    )
    german = describe(compile_text(hours), "de")
    assert "Zurückgehalten bis zum Ende jeder Stunde" in german
    assert "sofern sie binnen 1 Minute danach gesendet werden kann" in german
    anytime = describe(compile_text(POLICY), "en")
    assert "Held until the end of each hour" in anytime
    assert "inside these times" not in anytime
    immediate = describe(compile_text(POLICY.replace("    release: end_of_unit\n", "")), "en")
    assert "Held until" not in immediate
