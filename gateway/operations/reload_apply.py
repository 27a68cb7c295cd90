"""Applying a reload of ``einblick.yaml`` to the running gateway (the report: ``reload.py``).

Everything is read and checked before anything changes: a file that does not load, or a password
file that cannot be read, raises ConfigError (file:line) and the gateway runs on as it was. Each
item of the answer is marked applied only once it took effect; what needs a restart says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.config import Config, RecipientConfig, load_config
from gateway.devices.access import DeviceAccess, read_secret
from gateway.errors import GatewayError
from gateway.messages.admission import PolicyAdmission
from gateway.messages.flood import FloodGuard
from gateway.messages.outbox import Outbox
from gateway.messages.pipeline import Pipeline
from gateway.messages.upstreams import MakeForwarder, Upstreams
from gateway.operations.reload import Change, ReloadReport, plan
from gateway.rights.retention import RetentionTask

__all__ = ["ConfigReloader", "ReloadParts", "recipient_password"]

log = logging.getLogger(__name__)


def recipient_password(config: Config, recipient: RecipientConfig) -> str | None:
    if recipient.password_file is None:
        return None
    return read_secret(
        config.path(recipient.password_file), f"the password of recipient {recipient.name!r}"
    )


@dataclass(frozen=True)
class ReloadParts:
    """What a reload changes, and nothing else of the gateway."""

    config: Callable[[], Config]
    set_config: Callable[[Config], None]
    admission: PolicyAdmission
    devices: DeviceAccess
    upstreams: Upstreams
    make_forwarder: MakeForwarder
    pipeline: Callable[[], Pipeline]
    outbox: Outbox
    flood: FloodGuard
    retention: RetentionTask


class ConfigReloader:
    """One reload at a time, from the control socket or SIGHUP."""

    def __init__(self, parts: ReloadParts) -> None:
        self.parts = parts
        self._lock = asyncio.Lock()
        self._group: asyncio.TaskGroup | None = None

    def start(self, group: asyncio.TaskGroup) -> None:
        """From now on a SIGHUP reloads in ``group``."""
        self._group = group

    async def reload(self) -> ReloadReport:
        """Re-read einblick.yaml and apply what can change while running."""
        async with self._lock:
            return await self._reload()

    def on_signal(self) -> None:
        """SIGHUP: reload in the background; the outcome goes to the log (no one to answer)."""
        if self._group is None:
            log.warning("SIGHUP before the gateway finished starting: ignored")
            return
        self._group.create_task(self._reload_logged(), name="reload-on-sighup")

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except GatewayError as exc:
            log.error("reload on SIGHUP changed nothing: %s", exc)

    def _refuse_granted(
        self, changes: list[Change], before: Mapping[str, RecipientConfig]
    ) -> list[RecipientConfig]:
        """A recipient removed from the file but still granted by a running policy stays, and
        the change says why. Returns the recipients kept."""
        kept: list[RecipientConfig] = []
        for change in changes:
            name = change.key.split(".")[1] if change.key.startswith("recipients.") else None
            if name is None or change.detail != "removed":
                continue
            granted = sorted(
                f"{p.customer}/{g.id} ({p.source})"
                for p in self.parts.admission.engine.policies()
                for g in p.grants
                if g.recipient == name
            )
            if granted:
                change.action = "refused"
                change.detail = (
                    f"running policies still grant to it: {', '.join(granted)}; remove those "
                    "grants first (the policy applies at once), then reload again"
                )
                kept.append(before[name])
        return kept

    async def _reload(self) -> ReloadReport:
        parts = self.parts
        old = parts.config()
        new = load_config(old.source)
        changes = plan(old, new)
        passwords = {r.name: recipient_password(new, r) for r in new.recipients}
        before = {r.name: r for r in old.recipients}
        after = {r.name: r for r in new.recipients}
        kept = self._refuse_granted(changes, before)
        for name in sorted(before.keys() & after.keys()):
            if before[name] == after[name] and passwords[name] != parts.upstreams.passwords.get(
                name
            ):
                changes.append(
                    Change(
                        key=f"recipients.{name}.password",
                        was="(the old password)",
                        now="(the password file's new content)",
                        action="applied",
                    )
                )
        # What runs from now on: the new file, except what waits for a restart.
        live = new.model_copy(
            update={
                "instance": old.instance,
                "data_dir": old.data_dir,
                "database": old.database,
                "signing_key": old.signing_key,
                "policies_dir": old.policies_dir,
                "broker": old.broker,
                "cluster": old.cluster,
                "metrics": old.metrics,
                "pipeline": new.pipeline.model_copy(update={"queue": old.pipeline.queue}),
                "recipients": [*new.recipients, *kept],
            }
        )
        running_packet = old.broker_packet_bytes
        if live.broker_packet_bytes > running_packet:
            live = live.model_copy(
                update={
                    "pipeline": live.pipeline.model_copy(
                        update={"max_payload_bytes": old.pipeline.max_payload_bytes}
                    )
                }
            )
            for change in changes:
                if change.key == "pipeline.max_payload_bytes":
                    change.action = "restart"
                    change.detail = (
                        f"the running broker refuses packets over {running_packet} bytes; the "
                        "new size needs a restart of the broker"
                    )
        parts.set_config(live)
        self._apply_limits(live)
        await self._apply_recipients(before, {r.name: r for r in live.recipients}, passwords)
        parts.devices.check()
        count = parts.devices.reload_devices()
        await parts.devices.revoke_sessions()
        report = ReloadReport(source=str(old.source), changes=changes)
        # One record at warning level: shown at the default level, like the start-up block.
        log.warning("configuration reloaded (%d devices registered):\n%s", count, report.render())
        return report

    def _apply_limits(self, config: Config) -> None:
        parts = self.parts
        parts.retention.configure(config.retention, config.retention.check_every_s)
        parts.flood.rate = config.pipeline.device_max_rate
        parts.flood.burst = float(config.pipeline.device_burst)
        parts.pipeline().set_limits(
            batch_max=config.pipeline.batch_max,
            max_payload_bytes=config.pipeline.max_payload_bytes,
            outbox_max_rows=config.outbox.max_rows,
        )
        parts.outbox.queues.configure_from(config)

    async def _apply_recipients(
        self,
        before: Mapping[str, RecipientConfig],
        after: Mapping[str, RecipientConfig],
        passwords: Mapping[str, str | None],
    ) -> None:
        """Start, stop or reconnect only the forwarders whose recipient changed."""
        upstreams = self.parts.upstreams
        for name in sorted(before.keys() | after.keys()):
            recipient = after.get(name)
            if upstreams.unchanged(name, before.get(name), recipient, passwords):
                continue
            if name in upstreams.forwarders:
                await upstreams.stop(name)
            if recipient is None:
                await upstreams.remove(name, self.parts.pipeline().withhold_at_send)
                continue
            upstreams.add(self.parts.make_forwarder, recipient, passwords.get(name))
        # Recipients' names are part of every compiled policy (grants name them): compile all
        # again, so a policy waiting for a new recipient loads now.
        admission = self.parts.admission
        admission.policies.recipients = self.parts.config().recipient_names()
        admission.recompile()
