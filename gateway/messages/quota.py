"""Per-recipient queues: what waits in the outbox for each recipient, split into one share per
customer, its quota, and what happens when a message would go past it.

Every recipient drains its own queue (one forwarder each). A recipient that cannot be reached
stops draining; without a bound its queue would grow until the global outbox limit paused intake
for every customer, or until the disk was full. Each queue therefore has a quota, and the quota
is what a recipient's outage can cost the box — nobody else's messages wait for it.

Recipients are box-wide: several customers may grant releases to one recipient. So that one
customer's device cannot fill a shared recipient's queue and have every other customer's
releases to it withheld, the quota is split into equal *shares*, one per customer whose running
policy has a grant to that recipient (a customer that releases to it without one, e.g. an erasure
notice, counts as one more). A release is judged only against its own customer's share: a device
can fill its own customer's share and nothing else. When a policy adds a customer to a recipient
the shares shrink at once; a share already above its new size takes nothing until it drains
below it, so the queue exceeds its quota by at most what the older shares held.

A recipient's quota has two parts; a release is queued only while its share of both holds:

- rows: ``outbox.recipient_max_rows``, or else ``outbox.max_rows`` ÷ number of recipients. All
  queues at their quota together make exactly the global limit, so one recipient at its quota
  never pauses intake for the others.
- bytes: ``outbox.recipient_max_bytes``, or else ``outbox.disk_share`` × (free bytes on the
  database's file system + bytes the outbox already holds) ÷ number of recipients, measured at
  start and again every ``REMEASURE_S`` seconds. Adding back what the outbox holds keeps the quota
  steady while a queue grows (the bytes it takes leave the free space). A row costs its payload
  plus ``ROW_OVERHEAD`` bytes (topic, ids, index entries).

A customer's share is the recipient's quota ÷ the number of customers sharing it (rows: at least
one).

At the quota (``outbox.when_recipient_full``, or the recipient's own ``when_queue_full``):

- ``withhold`` (the default): the release to that recipient is recorded in the signed log as
  withheld with reason ``recipient_queue_full`` and the message is acknowledged. The same
  message's releases to other recipients go on, and so do other customers' releases to the same
  recipient; nothing else waits.
- ``hold``: the release is queued anyway (a share goes past its size by at most one batch) and
  the gateway stops taking messages from devices — from every device, because all devices reach
  the gateway over one MQTT session whose in-flight window is shared — until that share has
  drained below ``RESUME_AT`` of its size. For a box whose recipients must never miss a message
  and whose customers accept that one recipient's outage stalls all of them.

Counts follow the database: ``admit`` counts at once (the releases of one batch are judged
against each other), and a batch that does not commit takes its admissions back with ``undo``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.config import Config

__all__ = [
    "FRESH_S",
    "REMEASURE_S",
    "RESUME_AT",
    "ROW_OVERHEAD",
    "Admission",
    "QueueStatus",
    "RecipientQueues",
    "ShareStatus",
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
RESUME_AT = 0.9  # a held share lets intake resume once it is below 90 % of its size

Share = tuple[str, str]  # (recipient, customer)


def row_cost(payload_bytes: int) -> int:
    return payload_bytes + ROW_OVERHEAD


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process may still write on ``directory``'s file system."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


@dataclass(slots=True, unsafe_hash=True)  # not frozen: one per release, frozen __init__ costs 2x
class Admission:
    """What ``admit`` counted, so that a batch which does not commit can take it back."""

    recipient: str
    customer: str
    payload_bytes: int
    admitted: bool


@dataclass(frozen=True, slots=True)
class ShareStatus:
    """One customer's share of a recipient's queue."""

    rows: int
    bytes: int
    quota_rows: int
    quota_bytes: int
    withheld_at_quota: int
    holding: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "quota_rows": self.quota_rows,
            "quota_bytes": self.quota_bytes,
            "withheld_at_quota": self.withheld_at_quota,
            "holding": self.holding,
        }


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One recipient's queue as ``einblick status`` and the metrics show it, with each
    customer's share of it."""

    rows: int
    bytes: int
    quota_rows: int
    quota_bytes: int
    when_full: WhenFull
    withheld_at_quota: int
    holding: bool  # hold mode: a share of this queue is at its size and intake is paused for it
    customers: Mapping[str, ShareStatus] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "quota_rows": self.quota_rows,
            "quota_bytes": self.quota_bytes,
            "when_full": self.when_full,
            "withheld_at_quota": self.withheld_at_quota,
            "holding": self.holding,
            "customers": {c: s.as_dict() for c, s in sorted(self.customers.items())},
        }


class RecipientQueues:
    """The one owner of each recipient's queue depth (rows and bytes), per customer, and quota.

    ``admit`` is asked for each release before its batch commits, and counts what it admits at
    once, so the releases of one batch are judged against each other too; if the batch does not
    commit, the caller gives each ``Admission`` back to ``undo``. ``done`` is told what left the
    outbox (acknowledged upstream, withheld at send, erased)."""

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
        # Per recipient (all customers together): ``rows`` is the dict the pipeline's status reads.
        self.rows: dict[str, int] = dict.fromkeys(self._when_full, 0)
        self.bytes: dict[str, int] = dict.fromkeys(self._when_full, 0)
        self.withheld_at_quota: dict[str, int] = dict.fromkeys(self._when_full, 0)
        # Per (recipient, customer) share.
        self._rows: dict[Share, int] = {}
        self._bytes: dict[Share, int] = {}
        self._withheld: dict[Share, int] = {}
        self._sharers: dict[str, frozenset[str]] = {}
        self._holding: set[Share] = set()

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

    def share_count(self, recipient: str, customer: str) -> int:
        """How many customers share ``recipient``'s queue, counting ``customer`` among them."""
        sharers = self._sharers.get(recipient, frozenset())
        return len(sharers) + (customer not in sharers)

    def share_rows(self, recipient: str, customer: str) -> int:
        return max(1, self._quota_rows // self.share_count(recipient, customer))

    def share_bytes(self, recipient: str, customer: str) -> int:
        return self.quota_bytes // self.share_count(recipient, customer)

    def set_sharers(self, sharers: Mapping[str, Iterable[str]]) -> None:
        """recipient → the customers whose running policies have a grant to it (the policies
        changed): each gets an equal share of that recipient's queue."""
        self._sharers = {r: frozenset(c) for r, c in sharers.items()}
        self._update_holding()

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

    @classmethod
    def from_config(cls, config: Config) -> RecipientQueues:
        """The queues as ``config`` sets them, measuring the disk the database is on: built
        empty and configured, so a start and a reload read ``einblick.yaml`` the same way."""
        queues = cls(
            {},
            max_rows_total=1,
            max_rows=None,
            max_bytes=None,
            disk_share=0.0,
            disk=config.database_path.parent,
        )
        queues.configure_from(config)
        return queues

    def configure_from(self, config: Config) -> None:
        """A configuration reload (see ``configure``) from the reloaded ``config``."""
        outbox = config.outbox
        self.configure(
            {r.name: r.when_queue_full or outbox.when_recipient_full for r in config.recipients},
            max_rows_total=outbox.max_rows,
            max_rows=outbox.recipient_max_rows,
            max_bytes=outbox.recipient_max_bytes,
            disk_share=outbox.disk_share,
        )

    def forget(self, recipient: str) -> None:
        """A recipient removed from the configuration, its queue emptied."""
        for table in (self.rows, self.bytes, self.withheld_at_quota):
            table.pop(recipient, None)
        for shares in (self._rows, self._bytes, self._withheld):
            for key in [k for k in shares if k[0] == recipient]:
                del shares[key]
        self._when_full.pop(recipient, None)
        self._update_holding()

    # -- accounting -------------------------------------------------------------------------------

    def load(self, depth: Mapping[Share, tuple[int, int]]) -> None:
        """What the outbox holds at start: (recipient, customer) → (rows, payload bytes)."""
        for (recipient, customer), (rows, payload) in depth.items():
            self._count((recipient, customer), rows, payload + rows * ROW_OVERHEAD)
        self._measured_at = None
        self._update_holding()

    def when_full(self, recipient: str) -> WhenFull:
        return self._when_full.get(recipient, "withhold")

    def admit(self, recipient: str, customer: str, payload_bytes: int) -> Admission:
        """May a release of ``payload_bytes`` join ``customer``'s share of ``recipient``'s
        queue? Counted either way (queued, or withheld at the quota).

        Not admitted only for a ``withhold`` recipient whose share for ``customer`` is full: the
        caller records the release as withheld. A ``hold`` recipient is always admitted;
        ``holding`` then says intake must pause."""
        share = (recipient, customer)
        cost = row_cost(payload_bytes)
        when_full = self._when_full
        if when_full.get(recipient) == "withhold":
            size = self._bytes.get(share, 0) + cost
            quota_bytes = self.share_bytes(recipient, customer)
            if size > quota_bytes:
                self._remeasure(older_than=FRESH_S)
                quota_bytes = self.share_bytes(recipient, customer)
            if self._rows.get(share, 0) + 1 > self.share_rows(recipient, customer) or (
                size > quota_bytes
            ):
                self.withheld_at_quota[recipient] = self.withheld_at_quota.get(recipient, 0) + 1
                self._withheld[share] = self._withheld.get(share, 0) + 1
                return Admission(recipient, customer, payload_bytes, admitted=False)
        self._count(share, 1, cost)
        # Only ``hold`` recipients' shares pause intake: with none configured and none holding,
        # there is nothing to look at (the common case, asked for every release).
        if self._holding or "hold" in when_full.values():
            self._update_holding()
        return Admission(recipient, customer, payload_bytes, admitted=True)

    def undo(self, admission: Admission) -> None:
        """Take back an ``admit`` whose batch did not commit: neither its row nor its withheld
        entry exists."""
        share = (admission.recipient, admission.customer)
        if admission.admitted:
            self._count(share, -1, -row_cost(admission.payload_bytes))
            self._update_holding()
            return
        recipient = admission.recipient
        self.withheld_at_quota[recipient] = max(0, self.withheld_at_quota.get(recipient, 0) - 1)
        self._withheld[share] = max(0, self._withheld.get(share, 0) - 1)

    def added(self, recipient: str, customer: str, payload_bytes: int) -> None:
        """A row queued without asking (an erasure notice is owed whatever the quota)."""
        self._count((recipient, customer), 1, row_cost(payload_bytes))
        self._update_holding()

    def done(self, recipient: str, customer: str, rows: int, payload_bytes: int) -> None:
        """``rows`` rows of ``customer`` holding ``payload_bytes`` payload bytes left
        ``recipient``'s queue."""
        self._count((recipient, customer), -rows, -(payload_bytes + rows * ROW_OVERHEAD))
        self._update_holding()

    def _count(self, share: Share, rows: int, cost: int) -> None:
        recipient = share[0]
        self._rows[share] = max(0, self._rows.get(share, 0) + rows)
        self._bytes[share] = max(0, self._bytes.get(share, 0) + cost)
        self.rows[recipient] = max(0, self.rows.get(recipient, 0) + rows)
        self.bytes[recipient] = max(0, self.bytes.get(recipient, 0) + cost)

    # -- hold mode ---------------------------------------------------------------------------------

    @property
    def holding(self) -> frozenset[str]:
        """``hold`` recipients with a share at its size: intake pauses while any is."""
        return frozenset(recipient for recipient, _ in self._holding)

    @property
    def any_holding(self) -> bool:
        """Whether any ``hold`` share is at its size (``holding`` is not empty), without a copy."""
        return bool(self._holding)

    @property
    def holding_shares(self) -> frozenset[Share]:
        """(recipient, customer) shares at their size that pause intake."""
        return frozenset(self._holding)

    def _update_holding(self) -> None:
        for share in list(self._holding):
            if self.when_full(share[0]) != "hold" or share[0] not in self._when_full:
                self._holding.discard(share)
        for share, rows in self._rows.items():
            recipient, customer = share
            if recipient not in self._when_full or self.when_full(recipient) != "hold":
                continue
            size = self._bytes.get(share, 0)
            quota_rows = self.share_rows(recipient, customer)
            quota_bytes = self.share_bytes(recipient, customer)
            if share in self._holding:
                if rows < quota_rows * RESUME_AT and size < quota_bytes * RESUME_AT:
                    self._holding.discard(share)
            elif rows >= quota_rows or size >= quota_bytes:
                self._holding.add(share)

    # -- status -----------------------------------------------------------------------------------

    def status(self, recipient: str) -> QueueStatus:
        customers = {c for r, c in self._rows if r == recipient} | {
            c for r, c in self._withheld if r == recipient
        }
        customers |= self._sharers.get(recipient, frozenset())
        shares = {
            customer: ShareStatus(
                rows=self._rows.get((recipient, customer), 0),
                bytes=self._bytes.get((recipient, customer), 0),
                quota_rows=self.share_rows(recipient, customer),
                quota_bytes=self.share_bytes(recipient, customer),
                withheld_at_quota=self._withheld.get((recipient, customer), 0),
                holding=(recipient, customer) in self._holding,
            )
            for customer in customers
        }
        return QueueStatus(
            rows=self.rows.get(recipient, 0),
            bytes=self.bytes.get(recipient, 0),
            quota_rows=self._quota_rows,
            quota_bytes=self.quota_bytes,
            when_full=self.when_full(recipient),
            withheld_at_quota=self.withheld_at_quota.get(recipient, 0),
            holding=recipient in self.holding,
            customers=shares,
        )
