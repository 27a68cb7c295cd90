"""The flood guard's arithmetic: a device's backlog after a gap is not a flood; a flood is."""

from __future__ import annotations

from collections.abc import Hashable

from gateway.messages.flood import HELD_CREDIT_MAX_S, FloodGuard


def _allowed(guard: FloodGuard, key: Hashable, count: int, now: float) -> int:
    return sum(guard.allow(key, now) for _ in range(count))


def test_a_burst_beyond_the_bucket_is_refused() -> None:
    guard = FloodGuard(rate=10, burst=20)
    assert _allowed(guard, "dev", 100, now=0.0) == 20
    assert guard.refused == 80
    assert _allowed(guard, "dev", 100, now=1.0) == 10  # one second refills ten


def test_after_a_gap_the_backlog_of_a_device_that_kept_its_rate_passes() -> None:
    guard = FloodGuard(rate=10, burst=20)
    assert _allowed(guard, "known", 5, now=0.0) == 5
    # 60 s in which the gateway took nothing: a device at its 10/s queued 600 in the broker.
    guard.credit(60.0, now=60.0)
    assert _allowed(guard, "known", 600, now=60.0) == 600
    # The credit covers the backlog and nothing after it: back to a normal bucket.
    assert _allowed(guard, "known", 100, now=60.0) == 20
    # A device first seen during the catch-up (after a restart, all are) gets the same.
    assert _allowed(guard, "new", 620, now=61.0) == 620
    assert _allowed(guard, "new", 10, now=61.0) == 0


def test_a_device_that_flooded_during_the_gap_is_still_limited() -> None:
    guard = FloodGuard(rate=10, burst=20)
    guard.credit(10.0, now=10.0)
    # 10x its rate for the ten seconds: 1,000 queued, 120 (100 earned + the bucket) pass.
    assert _allowed(guard, "flooder", 1000, now=10.0) == 120


def test_the_catch_up_credit_for_new_devices_ends() -> None:
    guard = FloodGuard(rate=10, burst=20)
    guard.credit(5.0, now=0.0)
    assert _allowed(guard, "late", 100, now=61.0) == 20  # first seen after the catch-up


def test_a_gap_credited_in_parts_adds_up() -> None:
    guard = FloodGuard(rate=10, burst=20)
    for second in range(1, 7):  # six reconnect attempts a second apart
        guard.credit(1.0, now=float(second))
    assert _allowed(guard, "dev", 100, now=6.0) == 80  # 60 earned + the bucket


def test_a_holds_backlog_is_credited_to_the_moved_customers_devices_only() -> None:
    guard = FloodGuard(rate=10, burst=20)
    assert _allowed(guard, ("werk-a", "press-1"), 20, now=0.0) == 20
    assert _allowed(guard, ("werk-b", "press-1"), 20, now=0.0) == 20
    guard.credit_held("werk-a", 60.0, now=0.0)
    # werk-a's device queued 600 in the hold at its rate: they pass, and one first seen now too
    assert _allowed(guard, ("werk-a", "press-1"), 620, now=0.0) == 620
    assert _allowed(guard, ("werk-a", "oven-2"), 620, now=0.0) == 620
    # another customer's devices, and a new one of theirs, got nothing: still one bucket
    assert _allowed(guard, ("werk-b", "press-1"), 100, now=0.0) == 0
    assert _allowed(guard, ("werk-b", "oven-2"), 100, now=0.0) == 20


def test_a_holds_credit_is_capped_however_old_the_hold() -> None:
    guard = FloodGuard(rate=10, burst=20)
    guard.credit_held("werk-a", 3 * 86_400.0, now=0.0)  # a hold kept from days ago
    allowed = _allowed(guard, ("werk-a", "press-1"), 100_000, now=0.0)
    assert allowed == 20 + 10 * HELD_CREDIT_MAX_S
