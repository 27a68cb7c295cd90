"""`einblick status` as text: the running gateway's status reply, for an installer's eyes.

One renderer for the command and the demo's closing summary. Anything a device chose (client
ids, user names, refusal details) passes through ``neutralise``: shown, never interpreted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from pydantic import JsonValue

from gateway.operations.status_model import (
    LatencySummary,
    PipelineStatus,
    QueueState,
    Status,
)
from gateway.visible import neutralise
from gateway.witness.status import WitnessStatus

__all__ = ["render_status"]


def render_status(reply: Status | Mapping[str, JsonValue]) -> str:
    status = Status.read(reply)
    now = time.time()
    broker = status.device_broker
    pipeline = status.pipeline or PipelineStatus()
    lines = [
        f"Einblick {status.instance} — up {_age(now - status.started_at)}, key {status.key_fingerprint}",
        f"device broker: {'connected' if broker.connected else 'DISCONNECTED'}"
        + (f" ({neutralise(str(broker.error))})" if broker.error else ""),
        f"pipeline: {pipeline.received} received, {pipeline.entries} entries "
        f"({pipeline.shared} shared, {pipeline.altered} altered, {pipeline.withheld} withheld)",
    ]
    decided = pipeline.latency
    if decided is not None and decided.p50_ms is not None:
        lines.append(
            f"  received → committed: {_latency(decided)} (last {decided.window:,} messages)"
        )
    commits = pipeline.commits_on_loop + pipeline.commits_on_helper
    if commits and pipeline.slow_commit_ms is not None:
        # A disk slower than it should be shows here first: its COMMITs move to the helper.
        lines.append(
            f"  durable commits: {pipeline.commits_on_loop:,} on the event loop, "
            f"{pipeline.commits_on_helper:,} on a helper thread; {pipeline.slow_commits:,} took "
            f"{pipeline.slow_commit_ms:g} ms or more or failed (a slow disk's go to the helper)"
        )
    # Retained copies the broker sent again to a new session of the gateway, recognised in the
    # log as decided already (gateway/messages/replays.py): said, so that a quiet forwarder
    # after a reconnect reads as intended and not as loss.
    replayed = status.retained.replays_skipped
    if replayed:
        lines.append(
            f"  retained copies sent again by the device broker: {replayed} recognised as "
            "decided already, not decided or forwarded a second time"
        )
    if pipeline.failing_closed:
        lines.append(f"  FAILING CLOSED — nothing is forwarded: {pipeline.failing_closed}")
    if pipeline.outbox_full:
        why = pipeline.paused_because or "the outbox is full"
        lines.append(f"  INTAKE PAUSED — {why}; not taking device messages, the broker holds them")
    clock = status.clock
    if clock.steps_back:
        lines.append(
            f"CLOCK WENT BACK {clock.steps_back}× (largest step {clock.largest_step_s:.1f} s"
            + (f", now {clock.behind_s:.1f} s behind the log" if clock.behind_s else "")
            + "): entries keep the log's time"
            + ("; grants release only what every time it may be allows" if clock.behind_s else "")
            + "; check NTP (timedatectl status)"
        )
        if clock.behind_s and clock.also_at:
            lines.append("  " + _moments(clock.also_at))
    disk = status.disk
    if disk is not None and disk.text:
        lines.append(f"disk: {disk.text['en']}")
    if disk is not None and disk.error:
        lines.append(f"disk: {disk.error}")
    age = status.last_checkpoint_age_s
    lines.append(f"last signed checkpoint: {_age(age) + ' ago' if age is not None else 'none yet'}")
    if status.witnesses:
        lines.append("witnesses (countersign the checkpoints):")
        lines.extend(_witness(witness) for witness in status.witnesses)
    lines.append("upstreams:")
    for up in status.upstreams:
        state = "connected" if up.connected else f"DOWN ({neutralise(str(up.last_error))})"
        lines.append(
            f"  {up.recipient:<18} {state}; outbox {up.outbox_depth}, sent {up.sent}, "
            f"withheld at send {up.withheld_at_send}"
        )
        if up.queue is not None:
            lines.append(f"  {'':<18} {_queue(up.queue)}")
        delivered = up.latency
        if delivered is not None and delivered.p50_ms is not None:
            lines.append(f"  {'':<18} outbox → acknowledged: {_latency(delivered)}")
    pending = status.erasures.unacknowledged
    if pending:
        lines.append(f"erasures awaiting acknowledgement: {len(pending)}")
        for item in pending:
            subject = item.customer + (f"/{item.device}" if item.device else "")
            lines.append(
                f"  {item.recipient:<18} {subject} (requested {item.requested_at[:19]}, "
                f"notice {item.notice[:12]}…)"
            )
    refusals = status.refusals
    if refusals:
        lines.append(
            "refusals at the device broker (wrong credentials, refused TLS connections, denied "
            "topics, sessions taken over by a second login, queues dropping):"
        )
        # 'who' is the client id or user name a device sent: shown, never interpreted.
        for refusal in refusals[:20]:
            detail = f": {neutralise(str(refusal.detail))}" if refusal.detail else ""
            lines.append(
                f"  {refusal.kind:<16} {neutralise(str(refusal.who)):<32} {refusal.count}×, "
                f"last {_age(now - refusal.last)} ago{detail}"
            )
    problems = status.device_problems
    if problems:
        lines.append(
            f"devices not admitted to the broker (their topics break the rules): {len(problems)}"
        )
        lines.extend(f"  {p.customer}/{p.device}: {neutralise(str(p.error))}" for p in problems)
    if status.handovers:
        lines.append("handovers not finished (einblick handover):")
        for move in status.handovers:
            what = "HOLD" if move.kind == "hold" else "OLD COPY"
            held = f" since {_age(now - move.since)} ago" if move.since is not None else ""
            lines.append(f"  {what} {neutralise(move.customer)}{held}:")
            lines.append(f"    {neutralise(move.todo, lines=True)}")
    lines.append("policies:")
    for policy in status.policies:
        version = (policy.version or "-")[:12]
        line = f"  {policy.customer or '?':<22} version {version}  {policy.source}"
        if policy.error:
            line += f"\n    ERROR: {neutralise(str(policy.error), lines=True)}"
        lines.append(line)
    return "\n".join(lines)


def _witness(witness: WitnessStatus) -> str:
    """One witness: how far its cosignatures are behind, whether it answers, what it refused.
    Its answers are a remote server's text: shown, never interpreted."""
    if witness.entries_behind:
        since = witness.seconds_behind
        state = f"BEHIND by {witness.entries_behind:,} entries" + (
            f", {_age(since)}" if since is not None else ""
        )
    elif not witness.logs:
        state = "no checkpoint signed yet"
    elif witness.logs_cosigned == witness.logs:
        state = "up to date (the newest checkpoint of every log cosigned)"
    else:
        state = "waiting for its cosignature"
    if witness.reachable is False:
        state += f"; UNREACHABLE ({neutralise(str(witness.last_error))})"
    elif witness.last_error:
        state += f"; {neutralise(str(witness.last_error))}"
    text = f"  {witness.name:<18} {state}; {witness.cosigned:,} cosigned since start"
    for refusal in witness.refusals:
        what = f"HTTP {refusal.status}" if refusal.status else "not sent"
        text += f"\n    REFUSED {neutralise(refusal.log)} ({what}): {neutralise(refusal.reason)}"
    return text


def _queue(queue: QueueState) -> str:
    """One recipient's queue against its quota, and what happens at the quota."""
    used = max(queue.rows / max(1, queue.quota_rows), queue.bytes / max(1, queue.quota_bytes))
    text = (
        f"queue {queue.rows:,} of {queue.quota_rows:,} rows, "
        f"{queue.bytes / 1e6:.1f} of {queue.quota_bytes / 1e6:.1f} MB ({used:.0%}); "
        f"at the quota: {queue.when_full}"
    )
    if queue.withheld_at_quota:
        text += f"; {queue.withheld_at_quota:,} withheld at the quota"
    if queue.holding:
        text += "; HOLDING INTAKE"
    # Each customer's share: one customer at its share is withheld (or holds) alone.
    for customer, share in queue.customers.items():
        text += (
            f"\n      customer {neutralise(customer)}: {share.rows:,} of "
            f"{share.quota_rows:,} rows, {share.bytes / 1e6:.1f} of "
            f"{share.quota_bytes / 1e6:.1f} MB"
        )
        if share.withheld_at_quota:
            text += f"; {share.withheld_at_quota:,} withheld at its share"
        if share.holding:
            text += "; HOLDING INTAKE"
    return text


def _latency(summary: LatencySummary) -> str:
    return f"p50 {summary.p50_ms or 0:.1f} ms, p99 {summary.p99_ms or 0:.1f} ms, max {summary.max_ms or 0:.1f} ms"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _moments(also_at: list[str | None]) -> str:
    """The times besides the log's that grants are judged at while the clock is behind."""
    names = ("the clock's reading", "its last good reading carried on by the time since")
    said = [
        f"{datetime.fromisoformat(at).isoformat(timespec='minutes')} ({name})"
        if at is not None
        else "some time after the log's, how long unknown (no good reading since the start)"
        for at, name in zip(also_at, names, strict=False)
    ]
    return "grants are also judged at: " + "; ".join(said)
