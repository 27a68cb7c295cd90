"""Per-recipient queue quotas: sizing, withhold and hold at the quota, and what leaves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway import outbox
from gateway.migrations import migrate
from gateway.quota import FRESH_S, REMEASURE_S, ROW_OVERHEAD, RecipientQueues, WhenFull


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
    assert all(q.admit("cloud-a", 10) for _ in range(50))
    assert not q.admit("cloud-a", 10)
    assert q.status("cloud-a").withheld_at_quota == 1
    assert q.status("cloud-a").rows == 50


def test_an_explicit_rows_quota_wins() -> None:
    q = queues(max_rows_total=100, max_rows=3)
    assert [q.admit("cloud-a", 1) for _ in range(4)] == [True, True, True, False]


def test_one_full_queue_leaves_the_other_recipient_untouched() -> None:
    q = queues(max_rows_total=20)
    for _ in range(10):
        assert q.admit("cloud-a", 100)
    assert not q.admit("cloud-a", 100)
    assert all(q.admit("cloud-b", 100) for _ in range(10))
    assert q.status("cloud-b").withheld_at_quota == 0
    assert q.holding == frozenset()  # withhold mode never pauses intake


def test_what_leaves_makes_room_again() -> None:
    q = queues(max_rows_total=4)
    assert q.admit("cloud-a", 100) and q.admit("cloud-a", 50)
    assert not q.admit("cloud-a", 1)
    q.done("cloud-a", 1, 100)
    assert q.status("cloud-a").rows == 1
    assert q.status("cloud-a").bytes == 50 + ROW_OVERHEAD
    assert q.admit("cloud-a", 1)


def test_bytes_quota_is_a_share_of_free_disk_plus_what_the_outbox_holds() -> None:
    disk = Disk(free=4_000_000)
    clock = Clock()
    q = queues(max_rows_total=10**9, disk=disk, clock=clock)
    # 0.5 × (4 MB free + 0 held) ÷ 2 recipients
    assert q.quota_bytes == 1_000_000
    payload = 100_000 - ROW_OVERHEAD  # each row costs exactly 100 kB
    admitted = 0
    while q.admit("cloud-a", payload):
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
        q.admit("cloud-a", 10)
    assert disk.asked == 1
    disk.free = 0  # someone else filled the disk: the quota follows at the next measurement
    clock.now += REMEASURE_S
    assert q.quota_bytes == int(0.5 * q.status("cloud-a").bytes) // 2
    assert disk.asked == 2
    assert not q.admit("cloud-a", 10)


def test_before_refusing_for_bytes_the_disk_is_asked_again_when_freed_space_may_count() -> None:
    disk = Disk(free=0)  # measured while the disk was full: the quota is 0
    clock = Clock()
    q = queues(disk=disk, clock=clock)
    assert not q.admit("cloud-a", 10)
    disk.free = 4_000_000  # space returns
    assert not q.admit("cloud-a", 10)  # the last measurement is younger than FRESH_S
    clock.now += FRESH_S
    assert q.admit("cloud-a", 10)  # not a minute later: at the next refusal after FRESH_S
    assert disk.asked == 2


def test_a_fixed_bytes_quota_never_asks_the_disk() -> None:
    disk = Disk(free=0)
    q = queues(max_bytes=3 * (ROW_OVERHEAD + 100), disk=disk)
    assert [q.admit("cloud-b", 100) for _ in range(4)] == [True, True, True, False]
    assert disk.asked == 0


def test_hold_admits_everything_and_holds_until_the_queue_drains_below_ninety_percent() -> None:
    q = queues({"cloud-a": "hold", "cloud-b": "withhold"}, max_rows_total=20)
    for _ in range(12):  # past the quota of 10: a hold recipient never loses a release
        assert q.admit("cloud-a", 10)
    assert q.holding == frozenset({"cloud-a"})
    assert q.status("cloud-a").holding and q.status("cloud-a").withheld_at_quota == 0
    q.done("cloud-a", 3, 30)  # 9 rows: at 90 %, not below
    assert q.holding == frozenset({"cloud-a"})
    q.done("cloud-a", 1, 10)  # 8 rows
    assert q.holding == frozenset()


def test_an_erasure_notice_is_queued_whatever_the_quota() -> None:
    q = queues(max_rows_total=2)
    assert q.admit("cloud-a", 10)
    assert not q.admit("cloud-a", 10)
    q.added("cloud-a", 40)
    assert q.status("cloud-a").rows == 2


def test_the_queues_start_from_what_the_outbox_holds(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "outbox.db")
    migrate(conn)
    outbox.insert(
        conn,
        [
            (1, "cloud-a", "werk", "press", "g", "t", b"x" * 100, 0.0),
            (2, "cloud-a", "werk", "press", "g", "t", b"y" * 50, 0.0),
            (3, "cloud-b", "werk", "press", "g", "t", b"", 0.0),
        ],
    )
    sizes = outbox.sizes(conn)
    conn.close()
    assert sizes == {"cloud-a": (2, 150), "cloud-b": (1, 0)}
    q = queues(max_rows_total=6)
    q.load(sizes)
    assert q.status("cloud-a").rows == 2
    assert q.status("cloud-a").bytes == 150 + 2 * ROW_OVERHEAD
    assert q.admit("cloud-a", 1)
    assert not q.admit("cloud-a", 1)


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
    }
