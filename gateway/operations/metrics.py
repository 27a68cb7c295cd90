"""Prometheus text-format metrics on a loopback port, off by default (``metrics.enabled``).

A scrape is a plain HTTP GET answered from counters the gateway keeps anyway; nothing here
touches the database, so a scraper can never slow the pipeline down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from pydantic import JsonValue

from gateway.messages.commit_place import INLINE_COMMIT_MAX_S
from gateway.operations.status_model import PipelineStatus, Status

__all__ = ["MetricsServer", "render"]


def render(reply: Status | Mapping[str, JsonValue]) -> str:
    """The gateway's status as Prometheus exposition text."""
    status = Status.read(reply)
    pipeline = status.pipeline or PipelineStatus()
    lines = [
        "# HELP einblick_messages_received_total Device messages received from the broker.",
        "# TYPE einblick_messages_received_total counter",
        f"einblick_messages_received_total {pipeline.received}",
        "# HELP einblick_entries_total Explanation entries committed, by outcome.",
        "# TYPE einblick_entries_total counter",
    ]
    for outcome in ("shared", "altered", "withheld"):
        lines.append(f'einblick_entries_total{{outcome="{outcome}"}} {getattr(pipeline, outcome)}')
    lines += [
        "# HELP einblick_commits_total Durable commits, by where they waited for the disk's fsync"
        " (the event loop while the disk is fast, a helper thread after a slow one).",
        "# TYPE einblick_commits_total counter",
        f'einblick_commits_total{{place="loop"}} {pipeline.commits_on_loop}',
        f'einblick_commits_total{{place="helper"}} {pipeline.commits_on_helper}',
        f"# HELP einblick_slow_commits_total Durable commits that took {INLINE_COMMIT_MAX_S * 1000:g}"
        " ms or more, or failed: a disk slower than it should be.",
        "# TYPE einblick_slow_commits_total counter",
        f"einblick_slow_commits_total {pipeline.slow_commits}",
        "# HELP einblick_failing_closed 1 while decisions cannot be recorded (nothing is forwarded).",
        "# TYPE einblick_failing_closed gauge",
        f"einblick_failing_closed {1 if pipeline.failing_closed else 0}",
        "# HELP einblick_outbox_full 1 while the outbox is full and device messages wait in the broker.",
        "# TYPE einblick_outbox_full gauge",
        f"einblick_outbox_full {1 if pipeline.outbox_full else 0}",
        "# HELP einblick_device_broker_connected 1 while the gateway's session with the device broker is up.",
        "# TYPE einblick_device_broker_connected gauge",
        f"einblick_device_broker_connected {1 if status.device_broker.connected else 0}",
        "# HELP einblick_upstream_connected 1 while the recipient's upstream broker is connected.",
        "# TYPE einblick_upstream_connected gauge",
    ]
    for up in status.upstreams:
        lines.append(
            f'einblick_upstream_connected{{recipient="{up.recipient}"}} {1 if up.connected else 0}'
        )
    lines += [
        "# HELP einblick_outbox_rows Rows waiting to be sent, per recipient.",
        "# TYPE einblick_outbox_rows gauge",
    ]
    for up in status.upstreams:
        lines.append(f'einblick_outbox_rows{{recipient="{up.recipient}"}} {up.outbox_depth}')
    queue_metrics = (
        ("outbox_bytes", "gauge", "bytes", "Bytes the outbox holds per recipient (payload + row)."),
        ("outbox_quota_rows", "gauge", "quota_rows", "Rows a recipient's queue may hold."),
        ("outbox_quota_bytes", "gauge", "quota_bytes", "Bytes a recipient's queue may hold."),
        (
            "withheld_at_quota_total",
            "counter",
            "withheld_at_quota",
            "Releases recorded as withheld because the recipient's queue was at its quota.",
        ),
        (
            "outbox_holding_intake",
            "gauge",
            "holding",
            "1 while this recipient (when_queue_full: hold) is at its quota and intake pauses.",
        ),
    )
    for name, kind, key, text in queue_metrics:
        lines += [f"# HELP einblick_{name} {text}", f"# TYPE einblick_{name} {kind}"]
        for up in status.upstreams:
            if up.queue is None:
                continue
            value = getattr(up.queue, key)
            lines.append(f'einblick_{name}{{recipient="{up.recipient}"}} {int(value)}')
    # Each customer's share of a recipient's queue (gateway/messages/quota.py): what one customer's
    # devices can fill, and what was withheld because that share, not the queue, was full.
    share_metrics = (
        ("outbox_share_rows", "gauge", "rows", "Rows a customer has waiting for a recipient."),
        ("outbox_share_bytes", "gauge", "bytes", "Bytes a customer has waiting for a recipient."),
        ("outbox_share_quota_rows", "gauge", "quota_rows", "Rows a customer's share may hold."),
        ("outbox_share_quota_bytes", "gauge", "quota_bytes", "Bytes a customer's share may hold."),
        (
            "withheld_at_share_total",
            "counter",
            "withheld_at_quota",
            "Releases recorded as withheld because the customer's share of the queue was full.",
        ),
    )
    for name, kind, key, text in share_metrics:
        lines += [f"# HELP einblick_{name} {text}", f"# TYPE einblick_{name} {kind}"]
        for up in status.upstreams:
            for customer, share in (up.queue.customers if up.queue else {}).items():
                labels = f'recipient="{up.recipient}",customer="{customer}"'
                lines.append(f"einblick_{name}{{{labels}}} {int(getattr(share, key))}")
    lines += [
        "# HELP einblick_sent_total Rows acknowledged by the recipient's broker.",
        "# TYPE einblick_sent_total counter",
    ]
    for up in status.upstreams:
        lines.append(f'einblick_sent_total{{recipient="{up.recipient}"}} {up.sent}')
    lines += [
        "# HELP einblick_broker_refusals_total Refusals and session takeovers at the device broker, "
        "by kind (see gateway/devices/refusals.py).",
        "# TYPE einblick_broker_refusals_total counter",
    ]
    for kind, count in sorted(status.refusal_totals.items()):
        lines.append(f'einblick_broker_refusals_total{{kind="{kind}"}} {count}')
    lines += [
        "# HELP einblick_devices_not_admitted Registered devices left out of the broker "
        "because their topics break the confinement rules.",
        "# TYPE einblick_devices_not_admitted gauge",
        f"einblick_devices_not_admitted {len(status.device_problems)}",
    ]
    disk = status.disk
    if disk is not None and disk.free_bytes is not None:
        # +Inf: not growing; NaN: not measured long enough for a rate yet
        full_in: float | str | None = disk.full_in_s
        if full_in is None:
            full_in = "NaN" if disk.growth_bytes_per_day is None else "+Inf"
        lines += [
            "# HELP einblick_disk_free_bytes Bytes free for the gateway on the database's disk.",
            "# TYPE einblick_disk_free_bytes gauge",
            f"einblick_disk_free_bytes {disk.free_bytes}",
            "# HELP einblick_database_bytes Size of the log database (file and WAL).",
            "# TYPE einblick_database_bytes gauge",
            f"einblick_database_bytes {disk.database_bytes}",
            "# HELP einblick_disk_full_in_seconds When the disk is full at the database's growth "
            "over the last window (+Inf: not growing).",
            "# TYPE einblick_disk_full_in_seconds gauge",
            f"einblick_disk_full_in_seconds {full_in}",
        ]
    age = status.last_checkpoint_age_s
    lines += [
        "# HELP einblick_checkpoint_age_seconds Seconds since the last signed checkpoint.",
        "# TYPE einblick_checkpoint_age_seconds gauge",
        f"einblick_checkpoint_age_seconds {age if age is not None else 'NaN'}",
        "# HELP einblick_witness_entries_behind Signed entries a witness has not yet cosigned, "
        "all logs together.",
        "# TYPE einblick_witness_entries_behind gauge",
        *(
            f'einblick_witness_entries_behind{{witness="{w.name}"}} {w.entries_behind}'
            for w in status.witnesses
        ),
        "# HELP einblick_witness_seconds_behind Age of the oldest checkpoint a witness has not "
        "covered (0: up to date).",
        "# TYPE einblick_witness_seconds_behind gauge",
        *(
            f'einblick_witness_seconds_behind{{witness="{w.name}"}} {w.seconds_behind or 0:.3f}'
            for w in status.witnesses
        ),
        "# HELP einblick_witness_up Whether the witness answered the last request (1) or not "
        "(0); NaN: nothing sent to it yet.",
        "# TYPE einblick_witness_up gauge",
        *(
            f'einblick_witness_up{{witness="{w.name}"}} '
            + {True: "1", False: "0", None: "NaN"}[w.reachable]
            for w in status.witnesses
        ),
        "# HELP einblick_witness_refused_logs Logs whose newest checkpoint a witness refused "
        "(a rewritten, forked or cut-back history, or a log it does not follow).",
        "# TYPE einblick_witness_refused_logs gauge",
        *(
            f'einblick_witness_refused_logs{{witness="{w.name}"}} {len(w.refusals)}'
            for w in status.witnesses
        ),
        "# HELP einblick_policy_errors Policy files that do not load (the last good version runs).",
        "# TYPE einblick_policy_errors gauge",
        f"einblick_policy_errors {sum(1 for p in status.policies if p.error)}",
        "# HELP einblick_latency_seconds Over the last 10,000 messages: received → committed, and "
        "per recipient outbox → acknowledged by its broker.",
        "# TYPE einblick_latency_seconds gauge",
    ]
    windows = [('stage="received_to_committed"', pipeline.latency)]
    windows += [
        (f'stage="outbox_to_acknowledged",recipient="{up.recipient}"', up.latency)
        for up in status.upstreams
    ]
    for labels, summary in windows:
        for quantile, key in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
            value_ms = None if summary is None else getattr(summary, key)
            if value_ms is not None:
                lines.append(
                    f'einblick_latency_seconds{{{labels},quantile="{quantile}"}} {value_ms / 1000:.6f}'
                )
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, host: str, port: int, status: Callable[[], Status]) -> None:
        self.host = host
        self.port = port
        self._status = status
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: nothing in them changes the answer
            if request_line.split(b" ")[:2] in ([b"GET", b"/metrics"], [b"GET", b"/"]):
                body = render(self._status()).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body = b"only GET /metrics is served here\n"
                head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            writer.write(
                head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
