"""The one retry schedule: doubling from ``first`` to ``cap``, jittered, never outside them."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from gateway.backoff import Backoff, database_retry


def test_without_jitter_the_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
        30.0,
    ]


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(0.2, 10.0, jitter=0.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.2
    assert backoff.next_delay() == 0.4


def test_jitter_spreads_delays_but_never_below_first_nor_above_cap() -> None:
    backoff = Backoff(0.5, 60.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 60.0 for d in delays)
    # Spread: late delays (all at the cap's step) are not one value, and differ from the step.
    late = delays[20:]
    assert len(set(late)) > 10
    assert min(late) < 60.0


def test_a_seeded_schedule_is_reproducible_and_follows_the_steps() -> None:
    first = [Backoff(1.0, 100.0, rng=random.Random(7)).next_delay() for _ in range(3)]
    assert first[0] == first[1] == first[2]
    backoff = Backoff(1.0, 100.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    again = Backoff(1.0, 100.0, jitter=0.5, rng=random.Random(7))
    assert delays == [again.next_delay() for _ in range(6)]
    # Step k is 2**k; its jittered delay stays within ±50 % of it (and not below first).
    for k, delay in enumerate(delays):
        step = 2.0**k
        assert max(1.0, step * 0.5) <= delay <= step * 1.5


def test_two_loops_failing_together_do_not_retry_in_lockstep() -> None:
    a = Backoff(0.5, 60.0, rng=random.Random(1))
    b = Backoff(0.5, 60.0, rng=random.Random(2))
    assert [a.next_delay() for _ in range(5)] != [b.next_delay() for _ in range(5)]


@pytest.mark.parametrize(
    ("first", "cap", "factor", "jitter", "message"),
    [
        (0.0, 1.0, 2.0, 0.5, "0 < first <= cap"),
        (2.0, 1.0, 2.0, 0.5, "0 < first <= cap"),
        (0.5, 1.0, 0.5, 0.5, "factor must be at least 1"),
        (0.5, 1.0, 2.0, 1.0, "jitter must be in [0, 1)"),
    ],
)
def test_a_schedule_that_makes_no_sense_is_refused(
    first: float, cap: float, factor: float, jitter: float, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Backoff(first, cap, factor=factor, jitter=jitter)


def test_sleep_waits_the_delay_it_reports() -> None:
    backoff = Backoff(0.01, 0.02, jitter=0.0)

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        slept = await backoff.sleep()
        return slept, loop.time() - started

    slept, elapsed = asyncio.run(run())
    assert slept == 0.01
    assert elapsed >= 0.01
    assert backoff.next_delay() == 0.02


def test_a_refusing_database_is_asked_again_soon_then_every_five_seconds_at_most() -> None:
    schedule = database_retry()
    delays = [schedule.next_delay() for _ in range(10)]
    assert 0.2 <= delays[0] <= 0.3  # a brief lock (a command run beside the gateway) passes soon
    assert max(delays) <= 5.0 and delays[-1] >= 2.5  # a full disk: noticed within 5 s of space
