"""The running gateway's status reply as typed models: built once by ``Gateway.status()``.

``einblick status`` (``status_text.render_status``), the Prometheus metrics and the TUI's
overview all read these fields, so a renamed or missing field is a type error in every reader,
not a ``KeyError`` in one of them at 2 am. The control socket still carries JSON: the gateway
sends ``Status.model_dump(mode="json", exclude_unset=True)`` and a client reads it back with
``Status.model_validate``. ``exclude_unset`` keeps the reply's keys exactly what the parts
reported (a disk that was never measured has only ``error``, not a row of nulls).

Retention's part is passed through as JSON values (its model lives beside the retention task,
which the TUI may not import): nothing here reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from gateway.witness.status import WitnessStatus

__all__ = [
    "ClockStatus",
    "DeviceBrokerStatus",
    "DeviceProblem",
    "DiskStatus",
    "ErasureNotice",
    "ErasureStatus",
    "HandoverPending",
    "LatencySummary",
    "PipelineStatus",
    "PolicyStatus",
    "QueueShare",
    "QueueState",
    "RefusalStatus",
    "RetainedStatus",
    "Status",
    "UpstreamStatus",
]


class _Reply(BaseModel):
    # Frozen: a status is a snapshot, readers never edit it. ``extra="ignore"``: a newer gateway
    # may add fields, an older TUI still reads the ones it knows.
    model_config = ConfigDict(frozen=True, extra="ignore")


class LatencySummary(_Reply):
    """The last ``window`` messages of one stage (gateway/messages/latency.py ``Latency``, read
    from its attributes); percentiles ``None`` while the window is empty."""

    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)

    count: int
    window: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class DeviceBrokerStatus(_Reply):
    connected: bool
    since: float | None = None
    error: str | None = None


class QueueShare(_Reply):
    """One customer's share of a recipient's queue."""

    rows: int
    bytes: int
    quota_rows: int
    quota_bytes: int
    withheld_at_quota: int
    holding: bool


class QueueState(_Reply):
    """One recipient's queue against its quota, and each customer's share of it."""

    rows: int
    bytes: int
    quota_rows: int
    quota_bytes: int
    when_full: str
    withheld_at_quota: int
    holding: bool
    customers: dict[str, QueueShare] = {}


class UpstreamStatus(_Reply):
    recipient: str
    display_name: str
    connected: bool
    since: float | None
    last_error: str | None
    sent: int
    withheld_at_send: int
    in_flight: int
    backlog: int
    outbox_depth: int
    queue: QueueState | None = None
    latency: LatencySummary | None = None


class PipelineStatus(_Reply):
    received: int = 0
    committed: int = 0
    entries: int = 0
    shared: int = 0
    altered: int = 0
    withheld: int = 0
    failing_closed: str | bool | None = None  # why the pipeline is not committing
    outbox_full: bool = False
    paused_because: str | None = None
    latency: LatencySummary | None = None
    # Where the durable COMMITs waited for the disk (gateway/messages/commit_place.py):
    # on the event loop while the disk is fast, on a helper thread after a slow one.
    commits_on_loop: int = 0
    commits_on_helper: int = 0
    slow_commits: int = 0  # took ``slow_commit_ms`` or longer, or failed
    slow_commit_ms: float | None = None


class ErasureNotice(_Reply):
    """An erasure notice a recipient has not acknowledged yet."""

    notice: str
    recipient: str
    customer: str
    device: str | None
    requested_at: str


class ErasureStatus(_Reply):
    unacknowledged: list[ErasureNotice] = []


class RetainedStatus(_Reply):
    """The retained sweeper's counts (gateway/messages/retained.py ``RetainedSweeper.status``), in
    the order it reports them. Each has a default, so a reply without the part still reads."""

    sweep_every_s: int | float = 0  # as configured: an int stays an int on the wire
    sweeps: int = 0
    cleared: int = 0  # retained messages deleted
    largest_sweep: int = 0
    replays_skipped: int = 0  # re-sent retained copies acknowledged without a second decision
    echoes: int = 0
    last_sweep: float | None = None  # unix time
    last_error: str | None = None


class ClockStatus(_Reply):
    steps_back: int = 0
    behind_s: float = 0.0
    largest_step_s: float = 0.0
    # While behind: the clock's reading, then its last good reading carried forward (ISO, UTC),
    # or None: some time after the log's, unknown (gateway/messages/clock.py ``also_at``).
    also_at: list[str | None] = []


class DiskStatus(_Reply):
    """The disk projection (gateway/operations/disk.py) and its last error; every projection
    field is absent until the first measurement."""

    database_bytes: int | None = None
    free_bytes: int | None = None
    total_bytes: int | None = None
    free_fraction: float | None = None
    window_s: float | None = None
    growth_bytes_per_day: float | None = None
    full_in_s: float | None = None
    level: Literal["ok", "warning", "critical"] | None = None
    warnings: list[str] = []
    text: dict[str, str] = {}
    error: str | None = None


class RefusalStatus(_Reply):
    """Refusals at the device broker of one kind for one client id or user name. ``who`` and
    ``detail`` are what a device sent: shown through ``neutralise``, never interpreted."""

    kind: str
    who: str
    count: int
    first: float | None = None
    last: float
    detail: str | None = None


class DeviceProblem(_Reply):
    customer: str
    device: str
    error: str


class PolicyStatus(_Reply):
    customer: str | None
    name: str | None = None
    language: str | None = None
    version: str | None
    source: str
    error: str | None = None


class HandoverPending(_Reply):
    """A handover not finished on this instance (gateway/operations/moved.py): ``hold``, the
    customer's messages wait in a hold session for this instance; ``copy``, this instance handed
    the customer over and still holds its personal data. ``todo``: what to do, in words."""

    customer: str
    kind: Literal["hold", "copy"]
    since: float | None = None  # unix time the hold began holding
    todo: str


class Status(_Reply):
    """The ``status`` control op's reply. ``pipeline`` is ``None`` in a customer's view (the
    counts are of every customer); the gateway always fills it."""

    instance: str
    started_at: float
    key_fingerprint: str
    device_broker: DeviceBrokerStatus
    upstreams: list[UpstreamStatus]
    pipeline: PipelineStatus | None
    erasures: ErasureStatus = ErasureStatus()
    retained: RetainedStatus = RetainedStatus()
    clock: ClockStatus = ClockStatus()
    retention: dict[str, JsonValue] = {}
    disk: DiskStatus | None = None
    refusals: list[RefusalStatus] = []
    refusal_totals: dict[str, int] = {}
    device_problems: list[DeviceProblem] = []
    last_checkpoint_age_s: float | None = None
    policies: list[PolicyStatus] = []
    witnesses: list[WitnessStatus] = []  # gateway/witness/submitter.py
    handovers: list[HandoverPending] = []  # gateway/operations/moved.py

    @classmethod
    def read(cls, status: Status | Mapping[str, object]) -> Status:
        """``status`` as the model: a reply read from the control socket is validated here, so
        any mapping will do (what is not a status is refused by the validation, not the type)."""
        return status if isinstance(status, Status) else cls.model_validate(status)

    def to_json(self) -> dict[str, JsonValue]:
        """The reply as the control socket carries it."""
        return self.model_dump(mode="json", exclude_unset=True)
