"""How the running gateway paces itself: the outbox and its quotas, the pipeline's sizes and
flood control, retention's schedule, the disk projection, the metrics listener."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.section import Section
from policies.model import RetentionSpec

__all__ = ["DiskConfig", "MetricsConfig", "OutboxConfig", "PipelineConfig", "RetentionConfig"]


class OutboxConfig(Section):
    # When this many rows wait to be sent, the gateway stops acknowledging device messages: the
    # broker keeps them (QoS 1, persistent session) until the upstreams drain the outbox.
    # Ten million by default because each recipient's row quota is a share of it: with three
    # recipients one may be down ~9 h at 100 messages/s before its releases are withheld; the
    # bytes quota (a share of the free disk) binds first on a small disk.
    max_rows: int = Field(default=10_000_000, ge=10)
    # Each recipient's queue has a quota (gateway/messages/quota.py says how it is sized) so that one
    # unreachable recipient cannot reach max_rows and pause intake for everyone.
    # Rows per recipient; None: max_rows ÷ number of recipients.
    recipient_max_rows: int | None = Field(default=None, ge=1)
    # Bytes per recipient; None: disk_share × (free disk + outbox) ÷ number of recipients.
    recipient_max_bytes: int | None = Field(default=None, ge=1024)
    disk_share: float = Field(default=0.5, gt=0, le=0.9)
    # At the quota: 'withhold' records that recipient's release as withheld (reason
    # recipient_queue_full) and goes on; 'hold' stops taking messages from every device until
    # the queue drains (one MQTT session carries all devices, so a hold cannot be per customer).
    when_recipient_full: Literal["withhold", "hold"] = "withhold"
    # Sent rows are kept this long so the TUI can show them, then pruned.
    keep_sent_s: int = Field(default=3600, ge=0)


class RetentionConfig(RetentionSpec):
    """The box's default retention (gateway/rights/retention.py); a policy's ``retention`` overrides it
    key by key for its customer. Unset keys: kept until erased (einblick forget)."""

    # How often the running gateway applies retention (an offloaded store job; an hour is
    # fine-grained enough for limits counted in days and years).
    check_every_s: float = Field(default=3600.0, gt=0, le=86_400)


class DiskConfig(Section):
    """The disk projection in status, the TUI and the metrics (gateway/operations/disk.py)."""

    sample_every_s: float = Field(default=60.0, gt=0, le=3600)
    window_h: float = Field(default=24.0, gt=0, le=24 * 31)  # the rate is taken over this
    warn_days: float = Field(default=30.0, gt=0)  # warn when full sooner than this
    critical_days: float = Field(default=7.0, gt=0)
    warn_free_percent: float = Field(default=10.0, ge=0, le=100)


class PipelineConfig(Section):
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    queue: int = Field(default=2000, ge=1)  # messages received but not yet committed
    # Messages per transaction at most. 1000 let one batch hold the event loop for a second on a
    # busy box and starved the forwarders: draining a backlog, Einblick forwarded ~200 msg/s at
    # ~980 µs CPU each while its outbox grew; at 100, 1,363 msg/s at 225 µs (README, "Speed").
    batch_max: int = Field(default=100, ge=1)
    # Traffic wakes the event loop at most about once per this many milliseconds; what arrived
    # meanwhile is read, committed and forwarded together (gateway/messages/pacing.py). A
    # message is read at most this much later (pauses are whole milliseconds: below 1 nothing
    # is held); 0: every packet wakes the loop at once.
    wake_interval_ms: float = Field(default=2.0, ge=0, le=50)
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Flood control per device: sustained messages per second, and the burst allowed above it.
    device_max_rate: float = Field(default=100.0, gt=0)
    device_burst: int = Field(default=500, ge=1)


class MetricsConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)
