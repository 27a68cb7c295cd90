"""Per-recipient queue quotas: sizing, withhold and hold at the quota, and what leaves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.log.migrations import migrate
from gateway.messages import outbox
from gateway.messages.quota import FRESH_S, REMEASURE_S, ROW_OVERHEAD, RecipientQueues, WhenFull


class Disk:
    """A file system whose free space the test sets; counts how often it was asked."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.asked = 0

    def __call__(self, path: Path) -> int:
        self.asked += 1
        return self.free


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queues(
    modes: dict[str, WhenFull] | None = None,
    *,
    max_rows_total: int = 100,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    disk: Disk | None = None,
    clock: Clock | None = None,
) -> RecipientQueues:
    return RecipientQueues(
        modes or {"cloud-a": "withhold", "cloud-b": "withhold"},
        max_rows_total=max_rows_total,
        max_rows=max_rows,
        max_bytes=max_bytes,
        disk_share=0.5,
        disk=Path("/"),
        measure=disk or Disk(10**12),
        clock=clock or Clock(),
    )


def test_rows_quota_defaults_to_the_global_limit_shared_by_the_recipients() -> None:
    q = queues(max_rows_total=100)
    assert q.quota_rows == 50  # two queues at their quota together are exactly max_rows
    assert all(q.admit("cloud-a", "werk", 10).admitted for _ in range(50))
    assert not q.admit("cloud-a", "werk", 10).admitted
    assert q.status("cloud-a").withheld_at_quota == 1
    assert q.status("cloud-a").rows == 50


def test_an_explicit_rows_quota_wins() -> None:
    q = queues(max_rows_total=100, max_rows=3)
    assert [q.admit("cloud-a", "werk", 1).admitted for _ in range(4)] == [True, True, True, False]


def test_one_full_queue_leaves_the_other_recipient_untouched() -> None:
    q = queues(max_rows_total=20)
    for _ in range(10):
        assert q.admit("cloud-a", "werk", 100).admitted
    assert not q.admit("cloud-a", "werk", 100).admitted
    assert all(q.admit("cloud-b", "werk", 100).admitted for _ in range(10))
    assert q.status("cloud-b").withheld_at_quota == 0
    assert q.holding == frozenset()  # withhold mode never pauses intake


def test_what_leaves_makes_room_again() -> None:
    q = queues(max_rows_total=4)
    assert q.admit("cloud-a", "werk", 100).admitted and q.admit("cloud-a", "werk", 50).admitted
    assert not q.admit("cloud-a", "werk", 1).admitted
    q.done("cloud-a", "werk", 1, 100)
    assert q.status("cloud-a").rows == 1
    assert q.status("cloud-a").bytes == 50 + ROW_OVERHEAD
    assert q.admit("cloud-a", "werk", 1).admitted


def test_bytes_quota_is_a_share_of_free_disk_plus_what_the_outbox_holds() -> None:
    disk = Disk(free=4_000_000)
    clock = Clock()
    q = queues(max_rows_total=10**9, disk=disk, clock=clock)
    # 0.5 × (4 MB free + 0 held) ÷ 2 recipients
    assert q.quota_bytes == 1_000_000
    payload = 100_000 - ROW_OVERHEAD  # each row costs exactly 100 kB
    admitted = 0
    while q.admit("cloud-a", "werk", payload).admitted:
        admitted += 1
        disk.free -= 100_000  # the queue's bytes leave the free space
        clock.now += REMEASURE_S  # and the quota is measured again before the next admission
    assert admitted == 10
    # Remeasured with 3 MB free and 1 MB held: still 1 MB. The quota does not shrink as the
    # queue grows, so a queue cannot starve itself.
    assert q.quota_bytes == 1_000_000
    assert q.status("cloud-a").withheld_at_quota == 1


def test_free_disk_is_measured_at_most_once_a_minute() -> None:
    disk = Disk(free=4_000_000)
    clock = Clock()
    q = queues(disk=disk, clock=clock)
    for _ in range(100):
        q.admit("cloud-a", "werk", 10)
    assert disk.asked == 1
    disk.free = 0  # someone else filled the disk: the quota follows at the next measurement
    clock.now += REMEASURE_S
    assert q.quota_bytes == int(0.5 * q.status("cloud-a").bytes) // 2
    assert disk.asked == 2
    assert not q.admit("cloud-a", "werk", 10).admitted


def test_before_refusing_for_bytes_the_disk_is_asked_again_when_freed_space_may_count() -> None:
    disk = Disk(free=0)  # measured while the disk was full: the quota is 0
    clock = Clock()
    q = queues(disk=disk, clock=clock)
    assert not q.admit("cloud-a", "werk", 10).admitted
    disk.free = 4_000_000  # space returns
    assert not q.admit(
        "cloud-a", "werk", 10
    ).admitted  # the last measurement is younger than FRESH_S
    clock.now += FRESH_S
    assert q.admit(
        "cloud-a", "werk", 10
    ).admitted  # not a minute later: at the next refusal after FRESH_S
    assert disk.asked == 2


def test_a_fixed_bytes_quota_never_asks_the_disk() -> None:
    disk = Disk(free=0)
    q = queues(max_bytes=3 * (ROW_OVERHEAD + 100), disk=disk)
    assert [q.admit("cloud-b", "werk", 100).admitted for _ in range(4)] == [True, True, True, False]
    assert disk.asked == 0


def test_hold_admits_everything_and_holds_until_the_queue_drains_below_ninety_percent() -> None:
    q = queues({"cloud-a": "hold", "cloud-b": "withhold"}, max_rows_total=20)
    for _ in range(12):  # past the quota of 10: a hold recipient never loses a release
        assert q.admit("cloud-a", "werk", 10).admitted
    assert q.holding == frozenset({"cloud-a"}) and q.any_holding
    assert q.status("cloud-a").holding and q.status("cloud-a").withheld_at_quota == 0
    q.done("cloud-a", "werk", 3, 30)  # 9 rows: at 90 %, not below
    assert q.holding == frozenset({"cloud-a"}) and q.any_holding
    q.done("cloud-a", "werk", 1, 10)  # 8 rows
    assert q.holding == frozenset() and not q.any_holding


def test_an_erasure_notice_is_queued_whatever_the_quota() -> None:
    q = queues(max_rows_total=2)
    assert q.admit("cloud-a", "werk", 10).admitted
    assert not q.admit("cloud-a", "werk", 10).admitted
    q.added("cloud-a", "werk", 40)
    assert q.status("cloud-a").rows == 2


def test_the_queues_start_from_what_the_outbox_holds(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "outbox.db")
    migrate(conn)
    outbox.insert(
        conn,
        [
            (1, "cloud-a", "werk", "press", "g", "t", b"x" * 100, 0),
            (2, "cloud-a", "werk", "press", "g", "t", b"y" * 50, 0),
            (3, "cloud-b", "werk", "press", "g", "t", b"", 0),
        ],
    )
    sizes = outbox.sizes(conn)
    conn.close()
    assert sizes == {("cloud-a", "werk"): (2, 150), ("cloud-b", "werk"): (1, 0)}
    q = queues(max_rows_total=6)
    q.load(sizes)
    assert q.status("cloud-a").rows == 2
    assert q.status("cloud-a").bytes == 150 + 2 * ROW_OVERHEAD
    assert q.admit("cloud-a", "werk", 1).admitted
    assert not q.admit("cloud-a", "werk", 1).admitted


@pytest.mark.parametrize("mode", ["withhold", "hold"])
def test_status_names_the_mode_and_the_quota(mode: WhenFull) -> None:
    q = queues({"cloud-a": mode}, max_rows_total=7, max_bytes=5000)
    shown = q.status("cloud-a").as_dict()
    assert shown == {
        "rows": 0,
        "bytes": 0,
        "quota_rows": 7,
        "quota_bytes": 5000,
        "when_full": mode,
        "withheld_at_quota": 0,
        "holding": False,
        "customers": {},
    }


# -- one share per customer --------------------------------------------------------------------


def test_customers_with_grants_to_a_recipient_get_equal_shares_and_fill_only_their_own() -> None:
    q = queues(max_rows_total=40)  # 20 rows per recipient
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    assert q.share_rows("cloud-a", "werk") == 10
    # One customer's device floods the shared recipient: it fills its own share only.
    assert all(q.admit("cloud-a", "werk", 10).admitted for _ in range(10))
    assert not any(q.admit("cloud-a", "werk", 10).admitted for _ in range(50))
    # The other customer's releases to the same recipient still join the queue.
    assert all(q.admit("cloud-a", "baeckerei", 10).admitted for _ in range(10))
    shown = q.status("cloud-a")
    assert (shown.rows, shown.withheld_at_quota) == (20, 50)
    assert shown.customers["werk"].withheld_at_quota == 50
    assert shown.customers["baeckerei"].withheld_at_quota == 0
    assert shown.customers["baeckerei"].rows == 10 and shown.customers["baeckerei"].quota_rows == 10


def test_a_customer_without_a_grant_counts_as_one_more_sharer() -> None:
    q = queues(max_rows_total=60)  # 30 rows per recipient
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    assert q.share_rows("cloud-a", "werk") == 15
    assert q.share_rows("cloud-a", "mueller") == 10  # 30 ÷ (2 sharers + itself)
    assert q.share_rows("cloud-b", "werk") == 30  # nobody else shares cloud-b


def test_the_bytes_quota_is_shared_too() -> None:
    row = ROW_OVERHEAD + 100
    q = queues(max_bytes=4 * row)
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    assert q.share_bytes("cloud-a", "werk") == 2 * row
    assert [q.admit("cloud-a", "werk", 100).admitted for _ in range(3)] == [True, True, False]
    assert q.admit("cloud-a", "baeckerei", 100).admitted


def test_a_new_sharer_shrinks_the_shares_and_an_overfull_share_takes_nothing_until_drained() -> (
    None
):
    q = queues(max_rows_total=40)  # 20 rows per recipient
    q.set_sharers({"cloud-a": {"werk"}})
    assert all(q.admit("cloud-a", "werk", 1).admitted for _ in range(20))
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})  # a policy added a grant to cloud-a
    assert not q.admit("cloud-a", "werk", 1).admitted
    assert q.admit("cloud-a", "baeckerei", 1).admitted  # the newcomer's share is free at once
    q.done("cloud-a", "werk", 11, 11)  # 9 left: below its share of 10
    assert q.admit("cloud-a", "werk", 1).admitted


def test_rows_that_leave_free_the_share_of_their_own_customer() -> None:
    q = queues(max_rows_total=4)  # 2 rows per recipient
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    assert q.admit("cloud-a", "werk", 1).admitted
    assert q.admit("cloud-a", "baeckerei", 1).admitted
    q.done("cloud-a", "baeckerei", 1, 1)
    assert not q.admit("cloud-a", "werk", 1).admitted  # baeckerei's room is not werk's
    assert q.admit("cloud-a", "baeckerei", 1).admitted


def test_hold_pauses_for_the_share_at_its_size_and_names_the_customer() -> None:
    q = queues({"cloud-a": "hold", "cloud-b": "withhold"}, max_rows_total=40)
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    for _ in range(9):
        q.admit("cloud-a", "werk", 1)
        q.admit("cloud-a", "baeckerei", 1)
    assert q.holding == frozenset()  # 18 of 20 rows, each share 9 of 10
    assert q.admit("cloud-a", "werk", 1).admitted
    assert q.holding_shares == frozenset({("cloud-a", "werk")})
    assert q.status("cloud-a").customers["werk"].holding
    assert not q.status("cloud-a").customers["baeckerei"].holding
    q.done("cloud-a", "werk", 2, 2)  # 8 of 10: below 90 %
    assert q.holding == frozenset()


def test_the_queues_start_from_what_the_outbox_holds_per_customer(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "outbox.db")
    migrate(conn)
    outbox.insert(
        conn,
        [(i, "cloud-a", "werk", "press", "g", "t", b"x", 0) for i in range(1, 3)]
        + [(3, "cloud-a", "baeckerei", "oven", "g", "t", b"y" * 7, 0)],
    )
    sizes = outbox.sizes(conn)
    conn.close()
    assert sizes == {("cloud-a", "werk"): (2, 2), ("cloud-a", "baeckerei"): (1, 7)}
    q = queues(max_rows_total=8)  # 4 rows per recipient, 2 per share
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    q.load(sizes)
    assert q.status("cloud-a").rows == 3
    assert not q.admit("cloud-a", "werk", 1).admitted
    assert q.admit("cloud-a", "baeckerei", 1).admitted


# -- admissions follow the database ---------------------------------------------------------


def test_undo_takes_back_an_admission_whose_batch_did_not_commit() -> None:
    q = queues(max_rows_total=4)  # 2 rows per recipient
    first = q.admit("cloud-a", "werk", 100)
    second = q.admit("cloud-a", "werk", 100)
    refused = q.admit("cloud-a", "werk", 100)
    assert (first.admitted, second.admitted, refused.admitted) == (True, True, False)
    for admission in (first, second, refused):
        q.undo(admission)
    shown = q.status("cloud-a")
    assert (shown.rows, shown.bytes, shown.withheld_at_quota) == (0, 0, 0)
    assert shown.customers["werk"].withheld_at_quota == 0
    assert q.admit("cloud-a", "werk", 100).admitted and q.admit("cloud-a", "werk", 100).admitted


def test_einblick_status_shows_each_customers_share() -> None:
    from gateway.operations.status_model import QueueState
    from gateway.operations.status_text import _queue

    q = queues(max_rows_total=40)
    q.set_sharers({"cloud-a": {"werk", "baeckerei"}})
    for _ in range(11):
        q.admit("cloud-a", "werk", 10)
    shown = _queue(QueueState.model_validate(q.status("cloud-a").as_dict()))
    assert "customer werk: 10 of 10 rows" in shown and "1 withheld at its share" in shown
    assert "customer baeckerei: 0 of 10 rows" in shown
