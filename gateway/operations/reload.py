"""`einblick reload` (and SIGHUP to `einblick run`): which changes of einblick.yaml a running
gateway applies at once, and which wait for a restart, item by item, with the reason.

``plan`` is pure: it compares the configuration the gateway runs with the file as it is now and
lists every changed setting once. The gateway applies the live ones (gateway/app.py,
``Gateway.reload_config``) and answers with the same list, each item marked applied only after it
took effect; the command prints that answer, never its own guess.

Applied live:
  recipients      added (a new forwarder), removed (its forwarder stops; rows still queued for
                  it are recorded withheld, reason ``recipient_removed``), changed URL,
                  credentials or TLS (that forwarder alone reconnects; its queue is kept)
  password files  a recipient's password file whose content changed: that forwarder reconnects
  pipeline        device_max_rate, device_burst, batch_max, max_payload_bytes (up to what the
                  running broker accepts), checkpoint_interval_s
  outbox          max_rows, recipient quotas, disk_share, when_recipient_full, keep_sent_s
  devices         the registry and device certificates (as after `einblick device add`)

Need a restart (each with its reason in RESTART_WHY): instance, data_dir, database,
signing_key, policies_dir, broker.*, metrics.*, pipeline.queue, pipeline.wake_interval_ms,
witnesses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from gateway.config import Config

__all__ = ["RESTART_WHY", "Change", "ReloadReport", "plan"]

Action = Literal["applied", "restart", "refused"]

RESTART_WHY = {
    "instance": "it names this box's log origin and its client ids upstream, fixed for a run so "
    "every checkpoint of the run has one origin",
    "data_dir": "the database, keys and broker files are opened at start; move them, then restart",
    "database": "the database is opened at start and held by the log's single writer",
    "signing_key": "the signing key signs this run's checkpoints; a new key starts with a restart "
    "(see README 'Signing-key rotation')",
    "policies_dir": "the policy watcher watches the directory it started with",
    "broker": "Mosquitto's listeners, TLS files and limits are fixed when it starts; a restart "
    "of the gateway restarts it, and devices' sessions and queued messages survive it",
    "metrics": "the metrics listener is bound at start",
    "disk": "the disk watch's sampling window and thresholds are set at start",
    "pipeline.queue": "the receive queue between the broker and the pipeline is sized at start",
    "pipeline.wake_interval_ms": "the event loop, which paces its wake-ups, is made at start",
    "cluster": "who owns which customer is fixed for a run, so each customer's log has one "
    "writer; moving a customer while both instances run could give it two",
    "witnesses": "each witness's submitter starts with the gateway; after a restart every witness "
    "goes on from the size it last cosigned",
}


class Change(BaseModel):
    """One changed setting: what changed, and what the running gateway did about it."""

    key: str
    was: str
    now: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        head = f"{self.key}: {self.was} -> {self.now}"
        if self.action == "applied":
            return f"  applied  {head}" + (f" ({self.detail})" if self.detail else "")
        label = "RESTART " if self.action == "restart" else "REFUSED "
        return f"  {label} {head}: {self.detail}"


class ReloadReport(BaseModel):
    source: str
    changes: list[Change]

    def render(self) -> str:
        if not self.changes:
            return f"{self.source}: nothing changed since the gateway read it"
        applied = sum(c.action == "applied" for c in self.changes)
        waiting = sum(c.action == "restart" for c in self.changes)
        refused = sum(c.action == "refused" for c in self.changes)
        head = f"{self.source}: {applied} change(s) applied"
        if waiting:
            head += f", {waiting} wait for a restart (systemctl restart einblick)"
        if refused:
            head += f", {refused} refused"
        return "\n".join([head, *(c.line() for c in self.changes)])


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "{…}"
    return str(value)


def _diff(prefix: str, old: object, new: object) -> list[tuple[str, str, str]]:
    """(dotted key, was, now) for every leaf setting that differs."""
    if isinstance(old, BaseModel) and isinstance(new, BaseModel) and type(old) is type(new):
        found: list[tuple[str, str, str]] = []
        for name in type(old).model_fields:
            found.extend(
                _diff(
                    f"{prefix}.{name}" if prefix else name, getattr(old, name), getattr(new, name)
                )
            )
        return found
    return [] if old == new else [(prefix, _shown(old), _shown(new))]


def plan(old: Config, new: Config) -> list[Change]:
    """Every setting that differs between the running configuration and the file, marked
    ``restart`` (with why) or, provisionally, ``applied`` (the gateway confirms each)."""
    changes: list[Change] = []
    for name in Config.model_fields:
        if name in {"source", "recipients"}:
            continue
        for key, was, now in _diff(name, getattr(old, name), getattr(new, name)):
            why = RESTART_WHY.get(key) or RESTART_WHY.get(key.split(".")[0])
            changes.append(
                Change(
                    key=key,
                    was=was,
                    now=now,
                    action="restart" if why else "applied",
                    detail=why or "",
                )
            )
    before = {r.name: r for r in old.recipients}
    after = {r.name: r for r in new.recipients}
    for name in sorted(before.keys() | after.keys()):
        key = f"recipients.{name}"
        if name not in before:
            changes.append(
                Change(key=key, was="none", now=after[name].url, action="applied", detail="added")
            )
        elif name not in after:
            changes.append(
                Change(
                    key=key, was=before[name].url, now="none", action="applied", detail="removed"
                )
            )
        else:
            for sub, was, now in _diff("", before[name], after[name]):
                changes.append(Change(key=f"{key}.{sub}", was=was, now=now, action="applied"))
    return changes
