"""The running gateway: every component, started in order and stopped in reverse.

    Mosquitto (managed) ─▶ device link ─▶ pipeline ─▶ store (log + outbox) ─▶ forwarders ─▶ upstreams
                                               ▲                                  │
                 policy set (hot reload) ──▶ engine ◀── still allowed? ──────────┘
                 control socket (status, consent) · checkpoints · aggregation windows

All long-lived work runs as named tasks in one TaskGroup; stopping cancels them, then a last
checkpoint is signed so a clean shutdown leaves every entry covered by a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.config import Config, RecipientConfig, load_config
from gateway.devices.broker import (
    Mosquitto,
    MosquittoSettings,
    device_rule,
    gateway_rule,
    hash_password,
    write_private,
)
from gateway.devices.refusals import RefusalBook
from gateway.devices.registry import RegisteredDevice, Registry, policy_claims
from gateway.devices.retained import RetainedSweeper
from gateway.devices.tls import CertificateAuthority, TlsFiles
from gateway.errors import ConfigError, GatewayError
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.clock import ForwardClock
from gateway.messages.device_link import DeviceLink, offline_seconds
from gateway.messages.flood import FloodGuard
from gateway.messages.forwarder import Forwarder, endpoint_for
from gateway.messages.mqtt import Endpoint, Inbound
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.pipeline import Pipeline
from gateway.messages.policyset import PolicySet
from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import RecipientQueues
from gateway.messages.store import Store
from gateway.operations.control import ControlServer
from gateway.operations.disk import DiskThresholds, DiskWatch
from gateway.operations.filemodes import tighten
from gateway.operations.lock import DirectoryLock
from gateway.operations.metrics import MetricsServer
from gateway.operations.reload import Change, ReloadReport, plan
from gateway.operations.startup import PolicyLine, StartFacts, gather
from gateway.operations.startup import render as render_start
from gateway.operations.status_model import (
    ClockStatus,
    DeviceBrokerStatus,
    DeviceProblem,
    DiskStatus,
    ErasureStatus,
    LatencySummary,
    PipelineStatus,
    PolicyStatus,
    QueueState,
    RefusalStatus,
    Status,
    UpstreamStatus,
)
from gateway.rights import erasure
from gateway.rights.consent import ConsentBook, ConsentParts
from gateway.rights.erasure import ErasureBook, ErasureParts
from gateway.rights.retention import RetentionTask, retention_for
from gateway.witness.submitter import Witnesses
from policies.decision import Reason
from policies.describe import describe
from policies.engine import Engine
from policies.errors import PolicyError

__all__ = ["Gateway", "read_secret"]

log = logging.getLogger(__name__)

SNAPSHOT_GLOB = "backup-snapshot-*.db"  # see _op_snapshot


def read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read {what}: {exc.strerror}") from exc


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.registry = Registry(config.data_path / "devices.json", reserved=self._broker_users())
        # Registered devices whose topics break the confinement rules (gateway/devices/registry.py), with
        # the reason: left out of the broker and the policies, named in status; others run.
        self.device_problems: dict[tuple[str, str], str] = {}
        self._check_devices()
        self.policies = PolicySet(
            config.policies_path,
            config.recipient_names(),
            self.admitted_devices,
            shapes_path=config.data_path / "policy-shapes.json",
        )
        self.keyring = Keyring()
        self.store = Store(config.database_path)
        self.signer = Signer.load(config.signing_key_path)
        self.erasures = ErasureBook()
        # The outbox's one owner: its table, its depth (loaded at start) and its room signal.
        self.outbox = Outbox(
            self.store,
            RecipientQueues(
                {
                    r.name: r.when_queue_full or config.outbox.when_recipient_full
                    for r in config.recipients
                },
                max_rows_total=config.outbox.max_rows,
                max_rows=config.outbox.recipient_max_rows,
                max_bytes=config.outbox.recipient_max_bytes,
                disk_share=config.outbox.disk_share,
                disk=config.database_path.parent,
            ),
            max_rows=config.outbox.max_rows,
        )
        self._acks: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()  # (.., .., µs)
        self._engine: Engine | None = None
        self._writer: LogWriter | None = None
        self.broker: Mosquitto | None = None
        self.flood = FloodGuard(config.pipeline.device_max_rate, config.pipeline.device_burst)
        self.refusals = RefusalBook([config.broker.tls_port] if config.broker.tls_port else [])
        self._revoked_certificates = False
        self.forwarders: dict[str, Forwarder] = {}
        # For a configuration reload: the task group, each forwarder's task, the password each
        # forwarder was started with (a changed password file reconnects it), and the topic
        # prefixes the pipeline reads (one dict, changed in place).
        self._tasks: asyncio.TaskGroup | None = None
        self._forwarder_tasks: dict[str, asyncio.Task[None]] = {}
        self._passwords: dict[str, str | None] = {}
        self._topic_prefix: dict[str, str] = {r.name: r.topic_prefix for r in config.recipients}
        self._reloading = asyncio.Lock()
        self.ready = asyncio.Event()
        self.retained = RetainedSweeper(
            lambda: self._helper_endpoint("retained"),
            every_s=config.broker.limits.retained_sweep_s,
            subscribed=lambda: self.device_link.connected,
        )
        self.device_link = DeviceLink(
            endpoint=self._device_endpoint,
            outbox=self.outbox,
            flood=self.flood,
            receive=self._receive,
            skip=self.retained.skip,
            opened=lambda: self.broker.save() if self.broker is not None else None,
        )
        self.device_state = self.device_link.state  # read by status
        self._last_checkpoint = 0.0
        self._checkpointed_entries = 0
        # Witnesses countersign checkpoints in their own tasks (gateway/witness/submitter.py);
        # cosignatures are small, lost ones are asked for again: no fsync of their own.
        self.witnesses = Witnesses(
            config.witnesses,
            read=lambda job: self.store.read(job, offload=True),
            write=lambda job: self.store.transaction(job, durable=False),
        )
        self.pipeline: Pipeline | None = None
        self.clock = ForwardClock(lambda: self._writer.last_at if self._writer else None)
        # Consent and erasure get the pieces they use, not the gateway (no import circle).
        self.consents = ConsentBook(
            ConsentParts(
                store=self.store,
                engine=lambda: self.engine,
                log_writer=lambda: self.writer,
                signer=self.signer,
                config=lambda: self.config,
                clock=self.clock.now,
            )
        )
        self.erasing = ErasureParts(
            store=self.store,
            engine=lambda: self.engine,
            log_writer=lambda: self.writer,
            keyring=self.keyring,
            signer=self.signer,
            config=lambda: self.config,
            devices=self.registry.devices,
            device_broker=self._erasure_endpoint,
            book=self.erasures,
            outbox=self.outbox,
        )
        self.retention = RetentionTask(
            self.store,
            lambda: self.writer,
            box=config.retention,
            rules=lambda: {
                p.customer: retention_for(self.config.retention, p.document.retention)
                for p in self.engine.policies()
            },
            clock=self.clock.now,
            every_s=config.retention.check_every_s,
        )
        self.disk = DiskWatch(
            config.database_path,
            sample_every_s=config.disk.sample_every_s,
            window_s=config.disk.window_h * 3600,
            thresholds=DiskThresholds(
                warn_days=config.disk.warn_days,
                critical_days=config.disk.critical_days,
                warn_free_fraction=config.disk.warn_free_percent / 100,
                min_span_s=min(600.0, 10 * config.disk.sample_every_s),
            ),
        )

    # -- accessors used by components -----------------------------------------------------------

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the gateway is not started"
        return self._engine

    @property
    def writer(self) -> LogWriter:
        assert self._writer is not None, "the gateway is not started"
        return self._writer

    # -- run --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start everything and run until cancelled; then stop in order."""
        config = self.config
        # First of all: a second gateway on this directory must not touch the socket, the
        # broker or the log of the running one.
        with DirectoryLock(config.data_path, config.instance):
            tighten(config.data_path)  # files an older release or a copy left readable by others
            # A backup's database copy that its command did not take away (killed, timed out)
            # holds every customer's content: it must not outlive an erasure unseen.
            for stale in config.data_path.glob(SNAPSHOT_GLOB):
                log.warning("removing a backup snapshot left behind: %s", stale)
                stale.unlink(missing_ok=True)
            await self._run_locked()

    async def _run_locked(self) -> None:
        config = self.config
        # Before opening the database writes to it.
        self.device_link.offline = offline_seconds(config.database_path)
        await self.store.open()
        try:
            self._writer = await self.store.read(
                lambda conn: LogWriter(conn, self.signer, config.instance), offload=True
            )
            await self.store.read(self.keyring.load)
            # One file at a time: a file that does not load, or cannot run beside the others,
            # stops only its own customer (withheld, "policy not loaded"), never the box.
            self._engine = Engine([], self.keyring)
            for path, policy in self.policies.load_each():
                self._admit(path, policy)
            compiled = self._engine.policies()
            await self.store.read(self.consents.load)  # withdrawals recorded in earlier runs
            await self.store.read(self.erasures.load)
            await self.outbox.load()
            self.pipeline = Pipeline(
                engine=lambda: self.engine,
                store=self.store,
                log_writer=lambda: self.writer,
                keyring=self.keyring,
                topic_prefix=self._topic_prefix,
                queue_size=config.pipeline.queue,
                batch_max=config.pipeline.batch_max,
                max_payload_bytes=config.pipeline.max_payload_bytes,
                outbox=self.outbox,
                flood=self.flood,
                not_loaded=self._not_loaded,
                clock=self.clock.now,
            )
            for recipient in config.recipients:
                self.forwarders[recipient.name] = self._forwarder(
                    recipient, self._recipient_password(recipient)
                )
            if config.broker.mode == "managed":
                await self._start_broker()
            control = ControlServer(config.control_socket, self._control_handlers())
            await control.start()
            metrics = (
                MetricsServer(config.metrics.host, config.metrics.port, self.status)
                if config.metrics.enabled
                else None
            )
            if metrics is not None:
                await metrics.start()
            try:
                async with asyncio.TaskGroup() as tasks:
                    self._tasks = tasks
                    if self.broker is not None:
                        tasks.create_task(self.broker.supervise(), name="broker-supervisor")
                    tasks.create_task(self.pipeline.run(), name="pipeline-writer")
                    tasks.create_task(self.device_link.run(), name="device-link")
                    if self.broker is not None:  # an external broker's retained messages may
                        # serve others (a dashboard reading discovery topics): left alone
                        tasks.create_task(self.retained.run(), name="retained-sweep")
                    for name, forwarder in self.forwarders.items():
                        self._forwarder_tasks[name] = tasks.create_task(
                            forwarder.run(), name=f"forwarder-{name}"
                        )
                    tasks.create_task(self._checkpoints(), name="checkpoints")
                    tasks.create_task(self._windows(), name="aggregation-windows")
                    tasks.create_task(self._watch_policies(), name="policy-watcher")
                    tasks.create_task(self._record_acks(), name="erasure-acks")
                    tasks.create_task(self.retention.run(), name="retention")
                    tasks.create_task(self.disk.run(), name="disk-watch")
                    self.witnesses.start(tasks)
                    self.ready.set()
                    # What runs, said once on stderr (the journal): not a log level away.
                    report = render_start(self.start_facts())
                    sys.stderr.write(report + "\n")
                    sys.stderr.flush()
                    log.info("%d customers, %d recipients", len(compiled), len(self.forwarders))
            finally:
                await control.close()
                if metrics is not None:
                    await metrics.close()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one failed."""
        log.info("stopping: closing the device session, signing a last checkpoint")
        try:
            await self.device_link.close()
            for forwarder in self.forwarders.values():
                await forwarder.delete_delivered()
            if self._writer is not None:
                try:
                    await self._checkpoint(force=True)
                except Exception:
                    log.exception("the final checkpoint could not be written")
        finally:
            try:
                await self.store.close()
            finally:
                if self.broker is not None:
                    await self.broker.stop()
                log.info("stopped")

    # -- the device side --------------------------------------------------------------------------

    def _broker_users(self) -> tuple[str, ...]:
        """The gateway's own broker users: its session, the helper that clears retained
        messages at an erasure, and the one that sweeps them (gateway/devices/retained.py); each its own
        user, so a helper's clean session never touches the gateway's persistent one: Mosquitto
        makes every client id the username."""
        user = self.config.broker.gateway_username
        return (user, f"{user}-erasure", f"{user}-retained")

    def _erasure_endpoint(self) -> Endpoint | None:
        """For clearing retained messages at an erasure: its own broker user (see
        ``_broker_users``; with the managed broker's client id bound to the username, the
        gateway's user would replace the gateway's session); None while the link is down."""
        return self._helper_endpoint("erasure") if self.device_link.connected else None

    def _helper_endpoint(self, role: str) -> Endpoint:
        """A second connection to the device broker as ``<gateway user>-<role>``."""
        base = self._device_endpoint()
        return Endpoint(
            host=base.host,
            port=base.port,
            client_id=f"{base.client_id}-{role}",
            username=f"{base.username}-{role}"
            if self.config.broker.mode == "managed"
            else base.username,
            password=base.password,
            tls=base.tls,
        )

    def _check_devices(self) -> None:
        self.device_problems = self.registry.problems(policy_claims(self.config.policies_path))
        for problem in self.device_problems.values():
            log.error("%s", problem)

    def admitted_devices(self) -> list[RegisteredDevice]:
        return [d for d in self.registry.devices() if d.key not in self.device_problems]

    def gateway_password(self) -> str:
        config = self.config
        if config.broker.mode == "external":
            if config.broker.gateway_password_file is None:
                return ""
            return read_secret(
                config.path(config.broker.gateway_password_file), "the gateway's broker password"
            )
        path = config.broker_dir / "gateway.secret"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24))
        return read_secret(path, "the gateway's broker password")

    def acl_rules(self) -> list[Any]:
        """The broker's users: the gateway reads everything; a device only its own topics."""
        password_hash = hash_password(self.gateway_password())
        rules = [gateway_rule(user, password_hash) for user in self._broker_users()]
        topics: dict[tuple[str, str], list[str]] = {}
        if self._engine is not None:
            for policy in self._engine.policies():
                for declared in policy.devices:
                    topics[(policy.customer, declared.id)] = [
                        t.pattern.pattern for t in declared.topics
                    ]
            # A customer whose policy is not running still publishes where it last did: their
            # messages must reach the gateway to be recorded as withheld, not vanish at the ACL.
            running = self._running
            for key, patterns in self.policies.not_loaded_topics(running).items():
                topics.setdefault(key, patterns)
        for registered in self.admitted_devices():
            patterns = topics.get(registered.key) or [p for p, _ in registered.topics]
            rules.append(
                device_rule(
                    registered.username, registered.password_hash, patterns, registered.commands
                )
            )
        return rules

    async def _start_broker(self) -> None:
        config = self.config
        tls = TlsFiles(config.data_path / "tls")
        has_tls = config.broker.tls_port is not None
        limits = config.broker.limits
        if has_tls:
            # Re-signed at every start: OpenSSL refuses every client once a CRL has expired.
            CertificateAuthority.load(tls).write_crl()
        self.broker = Mosquitto(
            MosquittoSettings(
                directory=config.broker_dir,
                port=config.broker.port,
                max_packet_size=config.broker_packet_bytes,
                max_inflight=limits.max_inflight_messages,
                max_queued=limits.max_queued_messages,
                max_queued_bytes=limits.max_queued_bytes,
                memory_limit=limits.memory_limit_bytes,
                listen=config.broker.listen,
                tls_port=config.broker.tls_port,
                ca_file=tls.ca_cert if has_tls else None,
                cert_file=tls.server_cert if has_tls else None,
                key_file=tls.server_key if has_tls else None,
                crl_file=tls.crl if has_tls else None,
                require_client_cert=config.broker.require_client_cert,
            ),
            binary=config.broker.mosquitto,
            on_log=self._broker_log,
            log_debug=config.broker.report_denied_publish,
        )
        self.broker.write_files(self.acl_rules())
        await self.broker.start()

    def _broker_log(self, lines: list[str]) -> None:
        for refusal in self.refusals.feed(lines, time.time()):
            log.warning(
                "device broker refused %s: %s%s",
                refusal.who,
                refusal.kind,
                f" ({refusal.detail})" if refusal.detail else "",
            )

    def reload_devices(self) -> int:
        """Re-read the registry, rewrite password file and ACL, and tell Mosquitto (SIGHUP).

        Revocation takes effect at once. For a password device SIGHUP is enough: Mosquitto 2.0
        re-checks every connected client against the new password file and disconnects those
        whose user is gone or whose password changed (tested in tests/gateway/test_devices.py).
        A certificate device is not re-checked on SIGHUP, and Mosquitto reads its CRL only at
        start; so when a certificate was revoked, ``revoke_sessions`` restarts the managed broker.
        A restart rather than the dynamic-security plugin (which can kick a client): the plugin
        would replace the password file and ACL this gateway already generates and tests with a
        second, stateful source of truth behind a control topic. A restart is rare (device
        removal), keeps one source, and loses nothing: persistent sessions and queued QoS 1
        messages are written to the persistence file at the clean stop and restored at start.
        """
        before = {d.username: d.cert_serial for d in self.registry.devices()}
        registered_before = set(self.registry.devices())
        self.registry.load()
        self._check_devices()
        after = {d.username: d.cert_serial for d in self.registry.devices()}
        if self._engine is not None:
            changed = registered_before ^ set(self.registry.devices())
            self._recompile_registered({d.customer for d in changed})
        if any(serial is not None and after.get(user) != serial for user, serial in before.items()):
            self._revoked_certificates = True
        if self.broker is not None:
            self.broker.write_files(self.acl_rules())
            self.broker.reload()
        return len(self.registry.devices())

    async def revoke_sessions(self) -> None:
        """After ``reload_devices``: close certificate sessions whose certificate was revoked."""
        if self._revoked_certificates and self.broker is not None:
            self._revoked_certificates = False
            log.warning("a device certificate was revoked: restarting the device broker")
            await self.broker.restart()

    def _device_endpoint(self) -> Endpoint:
        broker = self.config.broker
        return Endpoint(
            host=broker.host,
            port=broker.port,
            # The managed broker replaces every client id by the username anyway; saying so here
            # keeps the session's name the same in the gateway's logs and in Mosquitto's.
            client_id=broker.gateway_username if broker.mode == "managed" else broker.client_id,
            username=broker.gateway_username,
            password=self.gateway_password(),
        )

    def _receive(self, message: Inbound) -> None:
        assert self.pipeline is not None, "the device link runs only once the pipeline is built"
        self.pipeline.receive(message)

    # -- policies that do not load ----------------------------------------------------------------

    def _running(self, customer: str) -> bool:
        return self._engine is not None and self._engine.policy(customer) is not None

    def _check_single_file(self, path: Path, policy: Any) -> None:
        """Two files for one customer: the second would silently replace the first."""
        running = self._engine.policy(policy.customer) if self._engine is not None else None
        if running is not None and running.source != policy.source:
            raise PolicyError(
                str(path),
                f"customer {policy.customer!r} already has a policy ({running.source}); "
                "one file per customer: merge them or remove one",
                key="customer",
            )

    def _admit(self, path: Path, policy: Any) -> None:
        """At start: run ``policy`` beside those already admitted, or refuse it alone."""
        try:
            self._check_single_file(path, policy)
            self.engine.replace(policy)
        except PolicyError as exc:
            self.policies.refuse_at_start(path, str(exc))

    def _not_loaded(self, topic: str) -> tuple[str, str, str] | None:
        """(customer, device, stream) when ``topic`` belongs to a customer whose policy is not
        running (it did not load at start and has not loaded since)."""
        return self.policies.not_loaded(topic, self._running)

    # -- forwarding hooks ---------------------------------------------------------------------------

    def _still_allowed(self, customer: str, grant: str, now: datetime) -> Reason | None:
        if grant == erasure.NOTICE_GRANT:  # an erasure notice is owed whatever the policy says
            return None
        return self.engine.still_allowed(customer, grant, self.clock.not_before(now))

    async def _withhold_at_send(self, refused: Sequence[tuple[OutboxRow, Reason]]) -> None:
        assert self.pipeline is not None
        await self.pipeline.withhold_at_send(refused)

    # -- periodic work ------------------------------------------------------------------------------

    async def _checkpoint(self, *, force: bool = False, snapshot: Path | None = None) -> None:
        """Sign every log with new entries (all, if forced); with ``snapshot``, also copy the
        database as it stands right after this signature into that new file."""
        assert self.pipeline is not None
        entries = self.pipeline.stats.entries + self.consents.entries
        if not force and snapshot is None and entries == self._checkpointed_entries:
            return
        writer = self.writer
        now = self.clock.now()
        if snapshot is None:
            await self.store.transaction(
                lambda conn: writer.checkpoint(now),
                on_rollback=writer.rolled_back,
                on_commit=writer.committed,
            )
        else:
            await self.store.snapshot(
                snapshot,
                lambda conn: writer.checkpoint(now),
                on_rollback=writer.rolled_back,
                on_commit=writer.committed,
            )
        self._checkpointed_entries = entries
        self._last_checkpoint = time.time()
        self.witnesses.poke()

    async def _checkpoints(self) -> None:
        while True:  # the interval is read each time: a reload may change it
            await asyncio.sleep(self.config.pipeline.checkpoint_interval_s)
            try:
                await self._checkpoint()
            except GatewayError as exc:
                log.error("checkpoint failed (entries stay unsigned until the next one): %s", exc)

    async def _windows(self) -> None:
        assert self.pipeline is not None
        while True:
            await asyncio.sleep(1.0)
            now = self.clock.now()
            decisions = self.engine.flush(now)
            if decisions:
                await self.pipeline.record(decisions, now)

    async def _watch_policies(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            applied = [path for path in self.policies.changed() if self._apply_policy(path)]
            if applied:
                self._check_devices()
                if self.broker is not None:
                    self.broker.write_files(self.acl_rules())
                    self.broker.reload()

    def _apply_policy(self, path: Path) -> bool:
        """Load, compile and run one policy file in place of its running version; False (and
        the error recorded for status) when it does not load or cannot run beside the others.
        Compiling reads the registry too (gateway/messages/policyset.py adds registered devices the
        file does not declare), so this is also how a device registration reaches the engine."""
        compiled = self.policies.load(path)
        if compiled is None:
            return False
        try:
            self._check_single_file(path, compiled)
            self.engine.replace(compiled)
        except PolicyError as exc:
            self.policies.files[path].error = str(exc)
            log.error("policy %s not applied: %s", path.name, exc)
            return False
        # Its consents withdrawn in earlier runs still hold, also for a grant this version
        # brings back after a version without it.
        self.consents.restore(compiled.customer)
        log.info("policy %s applied: version %s", path.name, self.policies.files[path].version)
        return True

    def _recompile_registered(self, customers: set[str]) -> None:
        """After a registry change: compile again the policies of ``customers`` whose devices
        were added, removed or changed, so a new device is decided under its customer's policy
        from its first message and a removed one no longer is."""
        for path, loaded in sorted(self.policies.files.items()):
            if loaded.customer in customers and path.exists():
                self._apply_policy(path)

    def start_facts(self) -> StartFacts:
        """What is running, for the start-up block (gateway/operations/startup.py)."""
        return gather(
            self.config,
            [
                PolicyLine(file=str(f.path), customer=f.customer, version=f.version, error=f.error)
                for f in sorted(self.policies.files.values(), key=lambda f: f.path)
            ],
            devices=len(self.registry.devices()),
            devices_not_admitted=len(self.device_problems),
            key_fingerprint=self.signer.fingerprint,
        )

    # -- configuration reload -------------------------------------------------------------------

    def _recipient_password(self, recipient: RecipientConfig) -> str | None:
        if recipient.password_file is None:
            return None
        return read_secret(
            self.config.path(recipient.password_file),
            f"the password of recipient {recipient.name!r}",
        )

    def _forwarder(self, recipient: RecipientConfig, password: str | None) -> Forwarder:
        assert self.pipeline is not None
        self._passwords[recipient.name] = password
        forwarder = Forwarder(
            recipient,
            endpoint_for(recipient, self.config.instance, password),
            self.outbox,
            still_allowed=self._still_allowed,
            on_withhold=self._withhold_at_send,
            subscribe=erasure.ack_filter(recipient.topic_prefix),
            on_message=functools.partial(self._erasure_ack, recipient),
        )
        self.outbox.attach(recipient.name, forwarder.offer, forwarder.reread)
        return forwarder

    async def reload_config(self) -> ReloadReport:
        """Re-read einblick.yaml and apply what can change while running (gateway/operations/reload.py).

        Everything is read and checked before anything changes: a file that does not load, or
        a password file that cannot be read, raises ConfigError (file:line) and the gateway runs
        on as it was. Each item of the answer is marked applied only once it took effect."""
        async with self._reloading:
            return await self._reload_config()

    async def _reload_config(self) -> ReloadReport:
        assert self.pipeline is not None and self._tasks is not None
        old = self.config
        new = load_config(old.source)
        changes = plan(old, new)
        passwords = {r.name: self._recipient_password(r) for r in new.recipients}
        before = {r.name: r for r in old.recipients}
        after = {r.name: r for r in new.recipients}
        kept: list[RecipientConfig] = []  # removals refused: still granted by a running policy
        for change in changes:
            name = change.key.split(".")[1] if change.key.startswith("recipients.") else None
            if name is None or change.detail != "removed":
                continue
            granted = sorted(
                f"{p.customer}/{g.id} ({p.source})"
                for p in self.engine.policies()
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
        for name in sorted(before.keys() & after.keys()):
            if before[name] == after[name] and passwords[name] != self._passwords.get(name):
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
        self.config = live
        self._apply_limits(live)
        await self._apply_recipients(before, {r.name: r for r in live.recipients}, passwords)
        self._check_devices()
        count = self.reload_devices()
        await self.revoke_sessions()
        report = ReloadReport(source=str(old.source), changes=changes)
        # One record at warning level: shown at the default level, like the start-up block.
        log.warning("configuration reloaded (%d devices registered):\n%s", count, report.render())
        return report

    def _apply_limits(self, config: Config) -> None:
        assert self.pipeline is not None
        self.retention.configure(config.retention, config.retention.check_every_s)
        self.flood.rate = config.pipeline.device_max_rate
        self.flood.burst = float(config.pipeline.device_burst)
        self.pipeline.set_limits(
            batch_max=config.pipeline.batch_max,
            max_payload_bytes=config.pipeline.max_payload_bytes,
            outbox_max_rows=config.outbox.max_rows,
        )
        self.outbox.queues.configure(
            {
                r.name: r.when_queue_full or config.outbox.when_recipient_full
                for r in config.recipients
            },
            max_rows_total=config.outbox.max_rows,
            max_rows=config.outbox.recipient_max_rows,
            max_bytes=config.outbox.recipient_max_bytes,
            disk_share=config.outbox.disk_share,
        )

    async def _apply_recipients(
        self,
        before: Mapping[str, RecipientConfig],
        after: Mapping[str, RecipientConfig],
        passwords: Mapping[str, str | None],
    ) -> None:
        """Start, stop or reconnect only the forwarders whose recipient changed."""
        assert self.pipeline is not None and self._tasks is not None
        for name in sorted(before.keys() | after.keys()):
            recipient = after.get(name)
            unchanged = (
                recipient is not None
                and before.get(name) == recipient
                and passwords.get(name, self._passwords.get(name)) == self._passwords.get(name)
            )
            if unchanged:
                continue
            if name in self.forwarders:
                await self._stop_forwarder(name)
            if recipient is None:
                await self._withhold_removed(name)
                self._topic_prefix.pop(name, None)
                continue
            self._topic_prefix[name] = recipient.topic_prefix
            self.forwarders[name] = self._forwarder(recipient, passwords.get(name))
            self._forwarder_tasks[name] = self._tasks.create_task(
                self.forwarders[name].run(), name=f"forwarder-{name}"
            )
        # Recipients' names are part of every compiled policy (grants name them): compile all
        # again, so a policy waiting for a new recipient loads now.
        self.policies.recipients = self.config.recipient_names()
        for path in sorted(self.policies.files):
            if path.exists():
                self._apply_policy(path)

    async def _stop_forwarder(self, name: str) -> None:
        forwarder = self.forwarders.pop(name)
        self.outbox.detach(name)
        task = self._forwarder_tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await forwarder.delete_delivered()  # acknowledged rows are not sent again
        self._passwords.pop(name, None)

    async def _withhold_removed(self, name: str) -> None:
        """Rows still queued for a recipient removed from the configuration: recorded withheld
        (reason ``recipient_removed``) and taken out of the outbox, in batches."""
        assert self.pipeline is not None
        reason = Reason("recipient_removed")  # the entry names the recipient
        total = 0
        while True:
            rows = await self.outbox.pending(name, after=0, limit=1000)
            if not rows:
                break
            await self.pipeline.withhold_at_send([(row, reason) for row in rows])
            self.outbox.gone(name, ((r.customer, len(r.payload)) for r in rows))
            total += len(rows)
        self.outbox.queues.forget(name)
        if total:
            log.warning(
                "recipient %s removed from the configuration: %d queued rows recorded withheld",
                name,
                total,
            )

    def reload_on_signal(self) -> None:
        """SIGHUP: reload in the background; the outcome goes to the log (no one to answer)."""
        if self._tasks is None:
            log.warning("SIGHUP before the gateway finished starting: ignored")
            return
        self._tasks.create_task(self._reload_logged(), name="reload-on-sighup")

    async def _reload_logged(self) -> None:
        try:
            await self.reload_config()
        except GatewayError as exc:
            log.error("reload on SIGHUP changed nothing: %s", exc)

    async def _op_reload(self, request: Mapping[str, Any]) -> dict[str, Any]:
        report = await self.reload_config()
        return report.model_dump(mode="json")

    # -- control socket -------------------------------------------------------------------------------

    def _control_handlers(self) -> dict[str, Any]:
        return {
            "status": self._op_status,
            "policies": self._op_policies,
            "withdraw": self._op_withdraw,
            "give": self._op_give,
            "reload_devices": self._op_reload_devices,
            "forget": self._op_forget,
            "erasures": self._op_erasures,
            "checkpoint": self._op_checkpoint,
            "snapshot": self._op_snapshot,
            "reload": self._op_reload,
        }

    async def _op_status(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self.status().to_json()

    def status(self) -> Status:
        """The gateway's status, built once here; every reader reads its typed fields."""
        assert self.pipeline is not None
        stats = self.pipeline.stats
        names = self.config.recipient_names()
        running = {p.customer: p for p in self.engine.policies()}
        return Status(
            instance=self.config.instance,
            started_at=self.started_at,
            key_fingerprint=self.signer.fingerprint,
            device_broker=DeviceBrokerStatus.model_validate(self.device_state),
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
                    queue=QueueState.model_validate(self.pipeline.queue_status(name).as_dict()),
                    latency=LatencySummary.model_validate(f.delivered.summary()),
                )
                for name, f in self.forwarders.items()
            ],
            pipeline=PipelineStatus(
                received=stats.received,
                committed=stats.committed,
                entries=stats.entries,
                shared=stats.shared,
                altered=stats.altered,
                withheld=stats.withheld,
                failing_closed=stats.failing_closed,
                outbox_full=self.pipeline.outbox_full.is_set(),
                paused_because=self.pipeline.pause_reason(),
                latency=LatencySummary.model_validate(self.pipeline.decided.summary()),
            ),
            erasures=ErasureStatus.model_validate(self.erasures.status()),
            retained=self.retained.status(),
            clock=ClockStatus.model_validate(self.clock.status()),
            retention=self.retention.status(),
            disk=DiskStatus.model_validate(disk) if (disk := self.disk.status()) else None,
            refusals=[RefusalStatus.model_validate(r) for r in self.refusals.status()],
            refusal_totals=dict(self.refusals.totals),
            device_problems=[
                DeviceProblem(customer=c, device=d, error=e)
                for (c, d), e in sorted(self.device_problems.items())
            ],
            witnesses=self.witnesses.status(),
            last_checkpoint_age_s=(time.time() - self._last_checkpoint)
            if self._last_checkpoint
            else None,
            policies=[
                PolicyStatus(
                    customer=f.customer,
                    name=running[f.customer].name if f.customer in running else None,
                    language=running[f.customer].language if f.customer in running else None,
                    version=f.version,
                    source=str(f.path),
                    error=f.error,
                )
                for f in self.policies.files.values()
            ],
        )

    async def _op_policies(self, request: Mapping[str, Any]) -> dict[str, Any]:
        names = self.config.recipient_names()
        customers: list[dict[str, Any]] = []
        only = request.get("customer")
        for policy in self.engine.policies():
            if only and policy.customer != only:
                continue
            customers.append(
                {
                    "customer": policy.customer,
                    "name": policy.name,
                    "language": policy.language,
                    "version": policy.version,
                    "describe": {lang: describe(policy, lang) for lang in ("de", "en")},
                    "grants": [
                        {
                            "id": grant.id,
                            "recipient": grant.recipient,
                            "recipient_name": names.get(grant.recipient, grant.recipient),
                            "purpose": dict(grant.purpose),
                            "legal_basis": str(grant.legal_basis),
                            "consent": grant.consent.model_dump(mode="json")
                            if grant.consent
                            else None,
                            "withdrawn": self.consents.is_withdrawn(policy.customer, grant.id),
                            "fields": list(grant.spec.fields),
                            "devices": list(grant.devices),
                        }
                        for grant in policy.grants
                    ],
                }
            )
        # Customers whose file does not load: shown with the error (file:line), and no grants,
        # because none is in force. A running policy with a broken newer file shows it too.
        errors = {f.customer: f.error for f in self.policies.files.values() if f.error}
        for entry in customers:
            entry["error"] = errors.get(entry["customer"])
        for loaded in self.policies.files.values():
            customer = loaded.customer
            if loaded.error is None or customer is None or self._running(customer):
                continue
            if only and customer != only:
                continue
            customers.append(
                {
                    "customer": customer,
                    "name": customer,
                    "language": "de",
                    "version": None,
                    "describe": {},
                    "grants": [],
                    "error": loaded.error,
                }
            )
        return {"customers": customers}

    async def _op_withdraw(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self.consents.change(
            "withdraw",
            str(request.get("customer", "")),
            str(request.get("grant", "")),
            str(request.get("by") or "the customer"),
        )

    async def _op_give(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self.consents.change(
            "give",
            str(request.get("customer", "")),
            str(request.get("grant", "")),
            str(request.get("by") or "the customer"),
        )

    async def _op_reload_devices(self, request: Mapping[str, Any]) -> dict[str, Any]:
        count = self.reload_devices()
        await self.revoke_sessions()
        not_admitted = [
            {"customer": c, "device": d, "error": e}
            for (c, d), e in sorted(self.device_problems.items())
        ]
        answer: dict[str, Any] = {"devices": count, "not_admitted": not_admitted}
        customer, device = request.get("customer"), request.get("device")
        if isinstance(customer, str) and isinstance(device, str):
            answer["device"] = self._device_effect(customer, device)
        return answer

    def _device_effect(self, customer: str, device: str) -> dict[str, Any]:
        """What the running gateway does with ``customer``/``device`` now, as it is (not as the
        files say): the command that changed the registry prints only this."""
        registered = next((d for d in self.registry.devices() if d.key == (customer, device)), None)
        policy = self.engine.policy(customer)
        decided = policy is not None and policy.device(device) is not None
        broker = self.config.broker
        if registered is None:
            state = "decided" if decided else "removed"
        elif (customer, device) in self.device_problems:
            state = "not_admitted"
        elif registered.cert_serial is not None and not (
            broker.tls_port and broker.require_client_cert
        ):
            state = "no_tls_listener"
        elif policy is None:
            state = "policy_not_running"
        else:
            state = "decided" if decided else "not_in_policy"
        return {
            "state": state,
            "policy": policy.source if policy is not None else None,
            "version": policy.version if policy is not None else None,
            "error": self.device_problems.get((customer, device))
            or next(
                (f.error for f in self.policies.files.values() if f.customer == customer), None
            ),
        }

    # -- forgetting -----------------------------------------------------------------------------------

    async def _op_forget(self, request: Mapping[str, Any]) -> dict[str, Any]:
        device = request.get("device")
        return await erasure.forget(
            self.erasing,
            str(request.get("customer", "")),
            str(device) if device else None,
            str(request.get("by") or ""),
        )

    async def _op_checkpoint(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Sign every log now (before a backup or an export), so nothing is left uncovered, and
        let the witnesses cosign it, so an export carries their cosignatures too."""
        await self._checkpoint(force=True)
        await self.witnesses.settle()
        return {"signed_at": self._last_checkpoint}

    async def _op_snapshot(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """For a backup: sign every log and copy the database as it stood at that signature, so
        every entry in the copy is covered. The copy lies in the data directory (owner-only);
        whoever asked moves it away."""
        target = self.config.data_path / SNAPSHOT_GLOB.replace("*", secrets.token_hex(8))
        try:
            await self._checkpoint(force=True, snapshot=target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return {"path": str(target), "signed_at": self._last_checkpoint}

    async def _op_erasures(self, request: Mapping[str, Any]) -> dict[str, Any]:
        customer = request.get("customer")
        found = await self.store.read(
            functools.partial(erasure.list_erasures, customer=str(customer) if customer else None)
        )
        return {"erasures": found}

    def _erasure_ack(self, recipient: RecipientConfig, message: Inbound) -> None:
        """A message on a recipient's link: an erasure acknowledgement, or ignored."""
        notice = erasure.notice_id_from_ack(recipient.topic_prefix, message.topic)
        if notice is None or not message.payload:  # an empty payload clears a retained ack
            return
        self._acks.put_nowait((recipient.name, notice, time.time_ns() // 1000))

    async def _record_acks(self) -> None:
        while True:
            recipient, notice, at = await self._acks.get()
            try:
                known = await self.store.transaction(
                    functools.partial(erasure.record_ack, recipient=recipient, notice=notice, at=at)
                )
            except GatewayError as exc:
                log.error(
                    "erasure acknowledgement %s from %s not stored: %s", notice, recipient, exc
                )
                continue
            if known:
                self.erasures.acknowledged(notice)
                log.info("erasure notice %s acknowledged by %s", notice, recipient)
            else:
                log.warning("%s acknowledged an unknown erasure notice %s", recipient, notice)
