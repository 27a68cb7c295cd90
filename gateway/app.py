"""The running gateway: every component, built here, started in order and stopped in reverse.

    Mosquitto (managed) ─▶ device link ─▶ pipeline ─▶ store (log + outbox) ─▶ forwarders ─▶ upstreams
                                               ▲                                  │
                 policy set (hot reload) ──▶ engine ◀── still allowed? ──────────┘
                 control socket (status, consent) · checkpoints · aggregation windows

This module only composes: each component gets the narrow pieces it uses (the device side:
``gateway.devices.access``; its broker connections: ``gateway.messages.broker_endpoints``; which
policy runs: ``gateway.messages.admission``; the forwarders: ``gateway.messages.upstreams``; a
reload: ``gateway.operations.reload_apply``; the control ops: ``gateway.operations.handlers``,
served with the metrics port by ``gateway.operations.surfaces``). All long-lived work runs as
named tasks in one TaskGroup; stopping cancels them, then a last checkpoint is signed so a clean
shutdown leaves every entry covered by a signature.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from gateway.config import Config, RecipientConfig
from gateway.devices.access import DeviceAccess
from gateway.devices.broker import Mosquitto
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.admission import PolicyAdmission
from gateway.messages.aggregation import WindowCloser
from gateway.messages.broker_endpoints import BrokerEndpoints
from gateway.messages.clock import ForwardClock
from gateway.messages.device_link import DeviceLink, offline_seconds
from gateway.messages.endpoint import Inbound, endpoint_for
from gateway.messages.flood import FloodGuard
from gateway.messages.forwarder import Forwarder
from gateway.messages.heap import settle as settle_heap
from gateway.messages.outbox import Outbox
from gateway.messages.pipeline import Pipeline
from gateway.messages.policyset import PolicySet
from gateway.messages.pseudonyms import Keyring
from gateway.messages.replays import ReplayCheck
from gateway.messages.retained import RetainedSweeper
from gateway.messages.sendtime import SendParts, SendTime
from gateway.messages.store import Store
from gateway.messages.subscriptions import cluster_subscriptions, elsewhere
from gateway.messages.upstreams import Upstreams
from gateway.operations.backup_snapshots import remove_stale_snapshots
from gateway.operations.checkpoints import Checkpoints
from gateway.operations.cluster import check_ownership
from gateway.operations.disk import DiskWatch
from gateway.operations.filemodes import tighten
from gateway.operations.handlers import ControlParts, control_handlers
from gateway.operations.handover import HandoverParts, Handovers, handover_handlers
from gateway.operations.lock import DirectoryLock
from gateway.operations.moved import Scrubber, scrub_handlers
from gateway.operations.old_copies import reach_old_copies
from gateway.operations.portal.process import supervise_portal
from gateway.operations.reload import ReloadReport
from gateway.operations.reload_apply import ConfigReloader, ReloadParts, recipient_password
from gateway.operations.startup import PolicyLine, StartFacts, gather
from gateway.operations.startup import render as render_start
from gateway.operations.status import StatusParts, gather_status
from gateway.operations.status_model import Status
from gateway.operations.surfaces import Surfaces
from gateway.rights import erasure
from gateway.rights.consent import ConsentBook, ConsentParts
from gateway.rights.erasure_acks import ErasureAcks
from gateway.rights.erasure_book import ErasureBook
from gateway.rights.forgetting import ErasureParts
from gateway.rights.retention import RetentionTask, retention_for
from gateway.witness.submitter import Witnesses
from policies.engine import Engine

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.devices = DeviceAccess(lambda: self.config, self._declared_topics)
        self.policies = PolicySet(
            config.policies_path,
            config.recipient_names(),
            self.devices.admitted,
            shapes_path=config.data_path / "policy-shapes.json",
            owns=lambda customer: self.config.owns(customer),  # noqa: PLW0108 -- config is replaced at reload
        )
        self.keyring = Keyring()
        self.store = Store(config.database_path)
        self.signer = Signer.load(config.signing_key_path)
        self.erasures = ErasureBook()
        # The outbox's one owner: its table, its depth (loaded at start) and its room signal.
        self.outbox = Outbox.from_config(self.store, config)
        self.upstreams = Upstreams(self.outbox, config.recipients)
        self._writer: LogWriter | None = None
        self.flood = FloodGuard(config.pipeline.device_max_rate, config.pipeline.device_burst)
        self.ready = asyncio.Event()
        # The device broker's connections, built from the running configuration at each connect.
        self.endpoints = BrokerEndpoints(
            lambda: self.config,
            self.devices.gateway_password,
            lambda: self.device_link.connected,
        )
        self.retained = RetainedSweeper(
            lambda: self.endpoints.helper("retained"),
            every_s=config.broker.limits.retained_sweep_s,
            subscribed=lambda: self.device_link.connected,
        )
        self.device_link = DeviceLink(
            endpoint=self.endpoints.device,
            outbox=self.outbox,
            flood=self.flood,
            receive=self._receive,
            skip=self._skip,
            save=lambda: self.broker.save() if self.broker is not None else None,
            subscriptions=cluster_subscriptions(
                config,
                self._owned_customers,
                self._declared_topics,
                lambda: self.handovers.excluded,
            ),
        )
        self.device_state = self.device_link.state  # read by status
        # Witnesses countersign in their own tasks; cosignatures need no fsync (asked for again).
        self.witnesses = Witnesses(
            config.witnesses,
            read=lambda job: self.store.read(job, offload=True),
            write=lambda job: self.store.transaction(job, durable=False),
        )
        self.pipeline: Pipeline | None = None
        self.clock = ForwardClock(lambda: self._writer.last_at if self._writer else None)
        self.sendtime = SendTime(  # every queued row leaves under the policy in force then
            SendParts(
                engine=lambda: self.engine,
                keyring=self.keyring,
                store=self.store,
                log_writer=lambda: self.writer,
                outbox=self.outbox,
                clock=self.clock,
                topic_prefix=self.upstreams.topic_prefix,
                owed=frozenset({erasure.NOTICE_GRANT}),  # a notice is owed whatever the policy
            )
        )
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
        self.admission = PolicyAdmission(
            self.policies, restored=self.consents.restore, cluster=config.cluster is not None
        )
        # Closed aggregation windows are recorded through the pipeline like a message's decisions.
        self.windows = WindowCloser(
            lambda: self.engine,
            lambda decisions, now: self.running_pipeline.record(decisions, now),  # noqa: PLW0108 -- the pipeline is built at start
            self.clock,
        )
        self.devices.on_registry_change = self.admission.recompile
        self.erasing = ErasureParts(
            store=self.store,
            engine=lambda: self.engine,
            log_writer=lambda: self.writer,
            keyring=self.keyring,
            signer=self.signer,
            config=lambda: self.config,
            devices=self.devices.registry.devices,
            device_broker=self.endpoints.erasure,
            book=self.erasures,
            outbox=self.outbox,
            old_copies=lambda customer: reach_old_copies(self.config, customer),
        )
        self.erasure_acks = ErasureAcks(self.store, self.erasures)
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
        self.disk = DiskWatch.configured(config.database_path, config.disk)
        self.checkpoints = Checkpoints(
            self.store,
            lambda: self.writer,
            clock=self.clock.now,
            interval_s=lambda: self.config.pipeline.checkpoint_interval_s,
            signed=self.witnesses.poke,
        )
        # Moving a customer to or from this instance (einblick handover).
        self.handovers = Handovers(
            HandoverParts(
                config=lambda: self.config,
                admission=self.admission,
                device_link=self.device_link,
                pipeline=lambda: self.running_pipeline,
                store=self.store,
                writer=lambda: self.writer,
                signer=self.signer,
                keyring=self.keyring,
                consents=self.consents,
                flood=self.flood,
                skip=self.retained.skip,
                endpoint=self.endpoints.device,
                policies_applied=self._policies_applied,
                clock=self.clock,
            )
        )
        # What a handover leaves here: the customer's personal data goes once the move completes.
        self.scrubber = Scrubber(
            lambda: self.config,
            self.store,
            lambda: self.writer,
            self.keyring,
            self.consents,
            self.outbox,
        )
        self.reloader = ConfigReloader(
            ReloadParts(
                config=lambda: self.config,
                set_config=self._set_config,
                admission=self.admission,
                devices=self.devices,
                upstreams=self.upstreams,
                make_forwarder=self._forwarder,
                pipeline=lambda: self.running_pipeline,
                outbox=self.outbox,
                flood=self.flood,
                retention=self.retention,
            )
        )

    # -- accessors used by components -----------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.admission.engine

    @property
    def writer(self) -> LogWriter:
        assert self._writer is not None, "the gateway is not started"
        return self._writer

    @property
    def running_pipeline(self) -> Pipeline:
        assert self.pipeline is not None, "the gateway is not started"
        return self.pipeline

    @property
    def broker(self) -> Mosquitto | None:
        return self.devices.broker

    @property
    def forwarders(self) -> dict[str, Forwarder]:
        return self.upstreams.forwarders

    def _recipient_names(self) -> dict[str, str]:
        return self.config.recipient_names()  # the running configuration's, after a reload too

    def _set_config(self, config: Config) -> None:
        config.record_moves(*self.config.moves)  # handovers are the log's, not the file's
        self.config = config

    def _declared_topics(self) -> dict[tuple[str, str], list[str]]:
        return self.admission.declared_topics()

    # -- run --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start everything and run until cancelled; then stop in order."""
        config = self.config
        # First: a second gateway on this directory must not touch the running one's socket or log.
        with DirectoryLock(config.data_path, config.instance):
            tighten(config.data_path)  # files an older release or a copy left readable by others
            remove_stale_snapshots(config.data_path)  # each holds every customer's content
            await self._run_locked()

    async def _run_locked(self) -> None:
        config = self.config
        check_ownership(config)  # in a cluster: no customer's log here that another now owns
        # Before opening the database writes to it.
        self.device_link.offline = offline_seconds(config.database_path)
        await self.store.open()
        try:
            self._writer = await self.store.read(
                lambda conn: LogWriter(conn, self.signer, config.instance), offload=True
            )
            self._writer.closed.update(config.moves[0])  # logs handed over: closed here
            await self.store.read(self.keyring.load)
            # One file at a time: a file that does not load, or cannot run beside the others,
            # stops only its own customer (withheld, "policy not loaded"), never the box.
            compiled = self.admission.start(self.keyring)
            await self.store.read(self.consents.load)  # withdrawals recorded in earlier runs
            await self.scrubber.pending()  # a crash came between a move and its clean-up
            await self.store.read(self.erasures.load)
            await self.outbox.load()
            self.pipeline = Pipeline(
                engine=lambda: self.engine,
                store=self.store,
                log_writer=lambda: self.writer,
                keyring=self.keyring,
                topic_prefix=self.upstreams.topic_prefix,
                queue_size=config.pipeline.queue,
                batch_max=config.pipeline.batch_max,
                max_payload_bytes=config.pipeline.max_payload_bytes,
                outbox=self.outbox,
                flood=self.flood,
                not_loaded=self.admission.not_loaded,
                clock=self.clock,
                replays=ReplayCheck(
                    lambda: self.engine, self.store, self.retained.stats, flood=self.flood
                ),
            )
            for recipient in config.recipients:
                self.upstreams.add(
                    self._forwarder, recipient, recipient_password(config, recipient)
                )
            if config.broker.mode == "managed":
                await self.devices.start_broker()
            handlers = {
                **control_handlers(self._control_parts()),
                **handover_handlers(self.handovers),
                **scrub_handlers(self.scrubber),
            }
            async with Surfaces(config, handlers, self.status):
                settle_heap()  # start-up is done: what exists now lives as long as the process
                async with asyncio.TaskGroup() as tasks:
                    self.reloader.start(tasks)
                    broker = self.devices.broker
                    if broker is not None:
                        tasks.create_task(broker.supervise(), name="broker-supervisor")
                    tasks.create_task(self.pipeline.run(), name="pipeline-writer")
                    tasks.create_task(self.device_link.run(), name="device-link")
                    tasks.create_task(self.device_link.follow(), name="device-subscriptions")
                    if broker is not None:  # an external broker's retained messages may
                        # serve others (a dashboard reading discovery topics): left alone
                        tasks.create_task(self.retained.run(), name="retained-sweep")
                    self.upstreams.start(tasks)
                    tasks.create_task(self.checkpoints.run(), name="checkpoints")
                    tasks.create_task(self.windows.run(), name="aggregation-windows")
                    tasks.create_task(
                        self.admission.watch(self._policies_applied), name="policy-watcher"
                    )
                    tasks.create_task(self.erasure_acks.run(), name="erasure-acks")
                    tasks.create_task(self.retention.run(), name="retention")
                    tasks.create_task(self.disk.run(), name="disk-watch")
                    if config.portal is not None:  # its own process: no key, read-only log
                        tasks.create_task(supervise_portal(config.source), name="portal")
                    self.witnesses.start(tasks)
                    self.ready.set()
                    # What runs, said once on stderr (the journal): not a log level away.
                    report = render_start(self.start_facts())
                    sys.stderr.write(report + "\n")
                    sys.stderr.flush()
                    log.info(
                        "%d customers, %d recipients", len(compiled), len(self.upstreams.forwarders)
                    )
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one failed."""
        log.info("stopping: closing the device session, signing a last checkpoint")
        try:
            await self.device_link.close()
            await self.upstreams.delete_delivered()
            if self._writer is not None and self.pipeline is not None:
                try:
                    await self.checkpoints.sign(force=True)
                except Exception:
                    log.exception("the final checkpoint could not be written")
        finally:
            try:
                await self.store.close()
            finally:
                try:
                    if self.devices.broker is not None:
                        await self.devices.broker.stop()
                finally:
                    self.devices.flush_refusal_log()  # what the last window held back
                    log.info("stopped")

    def _control_parts(self) -> ControlParts:
        return ControlParts(
            status=self.status,
            recipient_names=self._recipient_names,
            admission=self.admission,
            consents=self.consents,
            devices=self.devices,
            erasing=self.erasing,
            store=self.store,
            checkpoints=self.checkpoints,
            reloader=self.reloader,
            data_path=self.config.data_path,
            held_copies=lambda customer: reach_old_copies(
                self.config, customer, clean_up=False, moves_known=True
            ),
            witnesses_settle=self.witnesses.settle,
        )

    # -- the device link's callbacks ---------------------------------------------------------------

    def _skip(self, message: Inbound) -> bool:
        """Acknowledged undecided: a fence, a replay, an echo, another instance's (subscriptions.py)."""
        return (
            self.handovers.sees(message)
            or self.retained.skip(message)
            or elsewhere(self.config, message.topic, self.policies.served_elsewhere)
        )

    def _receive(self, message: Inbound) -> None:
        self.running_pipeline.receive(message)

    def _policies_applied(self) -> None:
        """A changed policy file runs: its devices' topics go into the broker's ACL."""
        self.devices.check()
        # The devices admitted may have changed: unloaded files' claims are worked out again.
        self.policies.registry_changed()
        self.devices.rewrite_acl()
        self.device_link.changed()  # in a cluster, new topics are subscribed to

    def _owned_customers(self) -> list[str]:
        """The customers whose policy files this instance holds (in a cluster, only its own)."""
        return sorted({f.customer for f in self.policies.files.values() if f.customer})

    # -- forwarding ---------------------------------------------------------------------------------

    def _forwarder(self, recipient: RecipientConfig, password: str | None) -> Forwarder:
        return Forwarder(
            recipient,
            endpoint_for(recipient, self.config.instance, password),
            self.outbox,
            at_send=self.sendtime.settle,
            checked=self.sendtime.checked,
            settled_now=self.sendtime.settled_now,
            subscribe=erasure.ack_filter(recipient.topic_prefix),
            on_message=self.erasure_acks.listener(recipient),
        )

    # -- start-up ------------------------------------------------------------------------------------

    def start_facts(self) -> StartFacts:
        """What is running, for the start-up block (gateway/operations/startup.py)."""
        return gather(
            self.config,
            [
                PolicyLine(file=str(f.path), customer=f.customer, version=f.version, error=f.error)
                for f in sorted(self.policies.files.values(), key=lambda f: f.path)
            ],
            devices=len(self.devices.registry.devices()),
            devices_not_admitted=len(self.devices.problems),
            key_fingerprint=self.signer.fingerprint,
        )

    # -- reload and status --------------------------------------------------------------------------

    async def reload_config(self) -> ReloadReport:
        """Re-read einblick.yaml and apply what can change (gateway/operations/reload_apply.py)."""
        return await self.reloader.reload()

    def reload_on_signal(self) -> None:
        """SIGHUP: reload in the background; the outcome goes to the log."""
        self.reloader.on_signal()

    def status(self) -> Status:
        """The gateway's status, built once (gateway/operations/status.py); every reader reads
        its typed fields."""
        return gather_status(
            StatusParts(
                started_at=self.started_at,
                key_fingerprint=self.signer.fingerprint,
                config=lambda: self.config,
                pipeline=lambda: self.running_pipeline,
                engine=lambda: self.engine,
                policies=self.policies,
                upstreams=self.upstreams,
                device_link=self.device_link,
                devices=self.devices,
                erasures=self.erasures,
                retained=self.retained,
                clock=self.clock,
                retention=self.retention,
                disk=self.disk,
                witnesses=self.witnesses,
                checkpoints=self.checkpoints,
                commits=self.store.place,
            )
        )
