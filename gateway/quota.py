"""Per-recipient queues: what waits in the outbox for each recipient, its quota, and what
happens when a message would go past it.

Every recipient drains its own queue (one forwarder each). A recipient that cannot be reached
stops draining; without a bound its queue would grow until the global outbox limit paused intake
for every customer, or until the disk was full. Each queue therefore has a quota, and the quota
is what a recipient's outage can cost the box — nobody else's messages wait for it.

A queue's quota has two parts; a release is queued only while both hold:

- rows: ``outbox.recipient_max_rows``, or else ``outbox.max_rows`` ÷ number of recipients. All
  queues at their quota together make exactly the global limit, so one recipient at its quota
  never pauses intake for the others.
- bytes: ``outbox.recipient_max_bytes``, or else ``outbox.disk_share`` × (free bytes on the
  database's file system + bytes the outbox already holds) ÷ number of recipients, measured at
  start and again every ``REMEASURE_S`` seconds. Adding back what the outbox holds keeps the quota
  steady while a queue grows (the bytes it takes leave the free space). A row costs its payload
  plus ``ROW_OVERHEAD`` bytes (topic, ids, index entries).

At the quota (``outbox.when_recipient_full``, or the recipient's own ``when_queue_full``):

- ``withhold`` (the default): the release to that recipient is recorded in the signed log as
  withheld with reason ``recipient_queue_full`` and the message is acknowledged. The same
  message's releases to other recipients go on; nothing else waits.
- ``hold``: the release is queued anyway (a queue goes past its quota by at most one batch) and
  the gateway stops taking messages from devices — from every device, because all devices reach
  the gateway over one MQTT session whose in-flight window is shared — until the queue has
  drained below ``RESUME_AT`` of its quota. For a box whose recipients must never miss a message
  and whose customers accept that one recipient's outage stalls all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "FRESH_S",
    "REMEASURE_S",
    "RESUME_AT",
    "ROW_OVERHEAD",
    "QueueStatus",
    "RecipientQueues",
    "WhenFull",
    "free_bytes",
    "row_cost",
]

WhenFull = Literal["withhold", "hold"]

# What a row costs beyond its payload: the topic, the ids, the timestamps and two index entries.
ROW_OVERHEAD = 256
REMEASURE_S = 60.0
# Before refusing a release for bytes, a measurement older than this is taken again: space freed
# on a full disk counts within a second, not a minute.
FRESH_S = 1.0
RESUME_AT = 0.9  # a held recipient lets intake resume once its queue is below 90 % of its quota


def row_cost(payload_bytes: int) -> int:
    return payload_bytes + ROW_OVERHEAD


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process may still write on ``directory``'s file system."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One recipient's queue as ``einblick status`` and the metrics show it."""

    rows: int
    bytes: int
    quota_rows: int
    quota_bytes: int
    when_full: WhenFull
    withheld_at_quota: int
    holding: bool  # hold mode: this queue is at its quota and intake is paused for it

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "quota_rows": self.quota_rows,
            "quota_bytes": self.quota_bytes,
            "when_full": self.when_full,
            "withheld_at_quota": self.withheld_at_quota,
            "holding": self.holding,
        }


class RecipientQueues:
    """The one owner of each recipient's queue depth (rows and bytes) and quota.

    ``admit`` is asked for each release before its batch commits, and counts what it admits at
    once, so the releases of one batch are judged against each other too; the writer then retries
    a failing commit until it succeeds, so a count is never taken back. ``done`` is told what left
    the outbox (acknowledged upstream, withheld at send, erased)."""

    def __init__(
        self,
        when_full: Mapping[str, WhenFull],
        *,
        max_rows_total: int,
        max_rows: int | None,
        max_bytes: int | None,
        disk_share: float,
        disk: Path,
        measure: Callable[[Path], int] = free_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._when_full = dict(when_full)
        count = max(1, len(self._when_full))
        self._quota_rows = max_rows if max_rows is not None else max(1, max_rows_total // count)
        self._fixed_bytes = max_bytes
        self._disk_share = disk_share
        self._disk = disk
        self._measure = measure
        self._clock = clock
        self._measured_at: float | None = None
        self._quota_bytes = max_bytes if max_bytes is not None else 0
        self.rows: dict[str, int] = dict.fromkeys(self._when_full, 0)
        self.bytes: dict[str, int] = dict.fromkeys(self._when_full, 0)
        self.withheld_at_quota: dict[str, int] = dict.fromkeys(self._when_full, 0)
        self._holding: set[str] = set()

    # -- sizing ----------------------------------------------------------------------------------

    @property
    def quota_rows(self) -> int:
        return self._quota_rows

    @property
    def quota_bytes(self) -> int:
        self._remeasure()
        return self._quota_bytes

    def _remeasure(self, older_than: float = REMEASURE_S) -> None:
        if self._fixed_bytes is not None:
            return
        now = self._clock()
        if self._measured_at is not None and now - self._measured_at < older_than:
            return
        self._measured_at = now
        available = self._measure(self._disk) + sum(self.bytes.values())
        count = max(1, len(self._when_full))
        self._quota_bytes = int(self._disk_share * available) // count

    def configure(
        self,
        when_full: Mapping[str, WhenFull],
        *,
        max_rows_total: int,
        max_rows: int | None,
        max_bytes: int | None,
        disk_share: float,
    ) -> None:
        """A configuration reload: new quotas and recipients; what each queue holds is kept."""
        self._when_full = dict(when_full)
        count = max(1, len(self._when_full))
        self._quota_rows = max_rows if max_rows is not None else max(1, max_rows_total // count)
        self._fixed_bytes = max_bytes
        self._disk_share = disk_share
        self._quota_bytes = max_bytes if max_bytes is not None else 0
        self._measured_at = None
        for name in self._when_full:
            self.rows.setdefault(name, 0)
            self.bytes.setdefault(name, 0)
            self.withheld_at_quota.setdefault(name, 0)
        self._update_holding()

    def forget(self, recipient: str) -> None:
        """A recipient removed from the configuration, its queue emptied."""
        for table in (self.rows, self.bytes, self.withheld_at_quota):
            table.pop(recipient, None)
        self._when_full.pop(recipient, None)
        self._update_holding()

    # -- accounting -------------------------------------------------------------------------------

    def load(self, depth: Mapping[str, tuple[int, int]]) -> None:
        """What the outbox holds at start: recipient → (rows, payload bytes)."""
        for recipient, (rows, payload) in depth.items():
            self.rows[recipient] = rows
            self.bytes[recipient] = payload + rows * ROW_OVERHEAD
        self._measured_at = None
        self._update_holding()

    def when_full(self, recipient: str) -> WhenFull:
        return self._when_full.get(recipient, "withhold")

    def admit(self, recipient: str, payload_bytes: int) -> bool:
        """May a release of ``payload_bytes`` join ``recipient``'s queue? Counted if so.

        False only for a ``withhold`` recipient whose queue is at its quota: the caller records
        the release as withheld. A ``hold`` recipient is always admitted; ``holding`` then says
        intake must pause."""
        cost = row_cost(payload_bytes)
        rows = self.rows.get(recipient, 0)
        size = self.bytes.get(recipient, 0)
        withholds = recipient in self._when_full and self.when_full(recipient) == "withhold"
        if withholds and size + cost > self.quota_bytes:
            self._remeasure(older_than=FRESH_S)
        if withholds and (rows + 1 > self._quota_rows or size + cost > self._quota_bytes):
            self.withheld_at_quota[recipient] = self.withheld_at_quota.get(recipient, 0) + 1
            return False
        self.rows[recipient] = rows + 1
        self.bytes[recipient] = size + cost
        self._update_holding()
        return True

    def added(self, recipient: str, payload_bytes: int) -> None:
        """A row queued without asking (an erasure notice is owed whatever the quota)."""
        self.rows[recipient] = self.rows.get(recipient, 0) + 1
        self.bytes[recipient] = self.bytes.get(recipient, 0) + row_cost(payload_bytes)
        self._update_holding()

    def done(self, recipient: str, rows: int, payload_bytes: int) -> None:
        """``rows`` rows holding ``payload_bytes`` payload bytes left the outbox."""
        self.rows[recipient] = max(0, self.rows.get(recipient, 0) - rows)
        cost = payload_bytes + rows * ROW_OVERHEAD
        self.bytes[recipient] = max(0, self.bytes.get(recipient, 0) - cost)
        self._update_holding()

    # -- hold mode ---------------------------------------------------------------------------------

    @property
    def holding(self) -> frozenset[str]:
        """``hold`` recipients whose queue is at its quota: intake pauses while any is."""
        return frozenset(self._holding)

    def _update_holding(self) -> None:
        for recipient, mode in self._when_full.items():
            if mode != "hold":
                continue
            rows, size = self.rows.get(recipient, 0), self.bytes.get(recipient, 0)
            if recipient in self._holding:
                quota_bytes = self.quota_bytes
                below = rows < self._quota_rows * RESUME_AT and size < quota_bytes * RESUME_AT
                if below:
                    self._holding.discard(recipient)
            elif rows >= self._quota_rows or size >= self.quota_bytes:
                self._holding.add(recipient)

    # -- status -----------------------------------------------------------------------------------

    def status(self, recipient: str) -> QueueStatus:
        return QueueStatus(
            rows=self.rows.get(recipient, 0),
            bytes=self.bytes.get(recipient, 0),
            quota_rows=self._quota_rows,
            quota_bytes=self.quota_bytes,
            when_full=self.when_full(recipient),
            withheld_at_quota=self.withheld_at_quota.get(recipient, 0),
            holding=recipient in self._holding,
        )
