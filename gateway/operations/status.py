"""The running gateway's status, gathered once from the parts that own each figure.

Every reader (``einblick status``, the metrics endpoint, the control socket, the TUI) reads the
typed ``Status`` built here (``gateway/operations/status_model.py``); no part is asked twice and
no figure is mirrored: the outbox depth comes from the pipeline's statistics, a forwarder's
state from the forwarder, a policy's error from the policy set. The composition root hands over
the parts (``StatusParts``) and asks for a ``Status`` whenever a reader wants one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import Config
from gateway.devices.access import DeviceAccess
from gateway.messages.clock import ForwardClock
from gateway.messages.commit_place import CommitPlace
from gateway.messages.device_link import DeviceLink
from gateway.messages.pipeline import Pipeline
from gateway.messages.policyset import PolicySet
from gateway.messages.retained import RetainedSweeper
from gateway.messages.upstreams import Upstreams
from gateway.operations.checkpoints import Checkpoints
from gateway.operations.disk import DiskWatch
from gateway.operations.moved import pending_handovers
from gateway.operations.status_model import (
    ClockStatus,
    DeviceBrokerStatus,
    DeviceProblem,
    DiskStatus,
    ErasureNotice,
    ErasureStatus,
    LatencySummary,
    PipelineStatus,
    PolicyStatus,
    QueueState,
    RefusalStatus,
    RetainedStatus,
    Status,
    UpstreamStatus,
)
from gateway.rights.erasure_book import ErasureBook
from gateway.rights.retention import RetentionTask
from gateway.witness.submitter import Witnesses
from policies.engine import Engine

__all__ = ["StatusParts", "gather_status"]


@dataclass(frozen=True)
class StatusParts:
    """What a status is read from. The configuration, the pipeline and the engine are asked
    through callables because a reload replaces them while the parts stay."""

    started_at: float
    key_fingerprint: str
    config: Callable[[], Config]
    pipeline: Callable[[], Pipeline]
    engine: Callable[[], Engine]
    policies: PolicySet
    upstreams: Upstreams
    device_link: DeviceLink
    devices: DeviceAccess
    erasures: ErasureBook
    retained: RetainedSweeper
    clock: ForwardClock
    retention: RetentionTask
    disk: DiskWatch
    witnesses: Witnesses
    checkpoints: Checkpoints
    commits: CommitPlace  # the store's: where its durable COMMITs ran


def gather_status(parts: StatusParts) -> Status:
    """The gateway's status now; every field from the one part that owns it."""
    config = parts.config()
    pipeline = parts.pipeline()
    stats = pipeline.stats
    names = config.recipient_names()
    running = {p.customer: p for p in parts.engine().policies()}
    link = parts.device_link.state
    return Status(
        instance=config.instance,
        started_at=parts.started_at,
        key_fingerprint=parts.key_fingerprint,
        device_broker=DeviceBrokerStatus(
            connected=link.connected, since=link.since, error=link.error
        ),
        upstreams=[
            UpstreamStatus(
                recipient=name,
                display_name=names[name],
                connected=f.state.connected,
                since=f.state.since,
                last_error=f.state.last_error,
                sent=f.state.sent,
                withheld_at_send=f.state.withheld_at_send,
                in_flight=f.state.in_flight,
                backlog=f.state.backlog,
                outbox_depth=stats.outbox_depth.get(name, 0),
                queue=QueueState.model_validate(pipeline.queue_status(name).as_dict()),
                latency=LatencySummary.model_validate(f.delivered.summary()),
            )
            for name, f in parts.upstreams.forwarders.items()
        ],
        pipeline=PipelineStatus(
            received=stats.received,
            committed=stats.committed,
            entries=stats.entries,
            shared=stats.shared,
            altered=stats.altered,
            withheld=stats.withheld,
            failing_closed=pipeline.failing_closed,
            outbox_full=pipeline.outbox_full.is_set(),
            paused_because=pipeline.pause_reason(),
            latency=LatencySummary.model_validate(pipeline.decided.summary()),
            commits_on_loop=parts.commits.on_loop,
            commits_on_helper=parts.commits.on_helper,
            slow_commits=parts.commits.slow,
            slow_commit_ms=parts.commits.slow_s * 1000,
        ),
        erasures=ErasureStatus(
            unacknowledged=[
                ErasureNotice.model_validate(n, from_attributes=True)
                for n in parts.erasures.pending()
            ]
        ),
        retained=RetainedStatus.model_validate(parts.retained.status()),
        clock=ClockStatus.model_validate(parts.clock.status()),
        retention=parts.retention.status().model_dump(mode="json"),
        disk=DiskStatus.model_validate(disk) if (disk := parts.disk.status()) else None,
        refusals=[RefusalStatus.model_validate(r) for r in parts.devices.refusals.status()],
        refusal_totals=dict(parts.devices.refusals.totals),
        device_problems=[
            DeviceProblem(customer=c, device=d, error=e)
            for (c, d), e in sorted(parts.devices.problems.items())
        ],
        witnesses=parts.witnesses.status(),
        handovers=pending_handovers(config),
        last_checkpoint_age_s=parts.checkpoints.age_s(),
        policies=[
            PolicyStatus(
                customer=f.customer,
                name=running[f.customer].name if f.customer in running else None,
                language=running[f.customer].language if f.customer in running else None,
                version=f.version,
                source=str(f.path),
                error=f.error,
            )
            for f in parts.policies.files.values()
        ],
    )
