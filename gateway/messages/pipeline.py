"""The pipeline: receive → identify → evaluate → log + outbox (one transaction) → ack → forward.

Device messages arrive on the gateway's persistent QoS 1 session and wait, unacknowledged, in a
bounded queue. The writer takes everything waiting (up to ``batch_max``), decides each message for
every recipient, and commits the explanation entries and the outbox rows in one transaction. Only
then are the messages acknowledged to the broker and the rows handed to the forwarders. If the
commit fails (disk full, database error) nothing is acknowledged and nothing is forwarded: the
batch is retried until the database takes it, and the broker keeps everything behind it.

The queue, its backpressure (when it is full, reading from the broker pauses: never a drop) and
the commit window that lets densely arriving messages share a commit are the intake's
(``gateway/messages/intake.py``). Deciding one message, before the policy engine under the
gateway's own limits (flood, size, a policy not loaded), is ``gateway/messages/deciding.py``'s.

Any failure while handling one message -- deciding, explaining, building or appending its
entries -- withholds that message alone: it is recorded with reason ``internal_error``, the
traceback goes to the gateway's log, and it is acknowledged like any other. A message that
failed and was left unacknowledged would come back from the broker after every restart and
stop the gateway each time (a crash loop one device could start at will).

Each recipient's queue in the outbox has a quota, split into equal shares among the customers
with grants to it (``gateway/messages/quota.py``): a release that would go past its customer's share is
recorded as withheld (``recipient_queue_full``) instead of queued, so a recipient that cannot be
reached costs only its own releases, and one customer's releases only that customer's share.
Intake pauses for everyone only when the outbox as a whole is full or a recipient configured to
``hold`` is at its quota.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.backoff import Backoff, database_retry
from gateway.errors import StoreError
from gateway.log.entry import EntryDraft, us_from_at
from gateway.log.writer import LogWriter
from gateway.messages.clock import ForwardClock, GatewayClock, elapsed
from gateway.messages.deciding import Decider
from gateway.messages.drafting import Drafter
from gateway.messages.endpoint import Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival, Intake
from gateway.messages.latency import LatencyWindow
from gateway.messages.outbox import Outbox, OutboxRow, keeps_source
from gateway.messages.pseudonyms import Keyring
from gateway.messages.pump import WritesHeld
from gateway.messages.quota import Admission, QueueStatus, RecipientQueues
from gateway.messages.release import release_at
from gateway.messages.replays import ReplayCheck
from gateway.messages.shares import QueueShares
from gateway.messages.store import Store
from policies.decision import Decision, Outcome, Reason
from policies.engine import Engine

__all__ = ["Pipeline", "PipelineStats"]

log = logging.getLogger(__name__)

# A release: its entry's index in the batch, the decision, and the device message it was decided
# from (kept with the outbox row, to decide it again at send time; None for a window's summary).
Release = tuple[int, Decision, Inbound | None]

# No commit for this long and nothing waiting: the next COMMIT runs on the loop thread.
QUIET_S = 0.005


@dataclass(slots=True)
class _Prepared:
    """One message's entries, and which of them release something (index into ``drafts``)."""

    inbound: Inbound
    drafts: list[EntryDraft]
    releases: list[Release]
    taken: list[Admission] = field(default_factory=list)  # undone if not committed


@dataclass(slots=True)
class PipelineStats:
    received: int = 0
    # Received on a session the device link stepped back from and left to the broker, which
    # sends them again (counted again in ``received`` then).
    returned: int = 0
    committed: int = 0
    # Retained messages on a new session found decided already: acknowledged, not committed
    # again (gateway/messages/replays.py).
    replayed: int = 0
    entries: int = 0
    batches: int = 0
    shared: int = 0
    altered: int = 0
    withheld: int = 0
    commit_failures: int = 0
    failing_closed: str | None = None  # why the pipeline is not committing, if it is not
    # Rows waiting per recipient: the very dict RecipientQueues owns (one owner, read here).
    outbox_depth: dict[str, int] = field(default_factory=dict)
    last_commit: float = 0.0


class Pipeline:
    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        store: Store,
        log_writer: Callable[[], LogWriter],
        keyring: Keyring,
        topic_prefix: dict[str, str],
        queue_size: int,
        batch_max: int,
        max_payload_bytes: int,
        outbox: Outbox,
        flood: FloodGuard | None = None,
        not_loaded: Callable[[str], tuple[str, str, str] | None] | None = None,
        clock: GatewayClock | None = None,
        replays: ReplayCheck | None = None,
    ) -> None:
        self._engine = engine
        self._replays = replays  # retained messages on a new session already decided
        self._store = store
        self._log_writer = log_writer
        self._keyring = keyring
        self._topic_prefix = topic_prefix
        self._intake = Intake(
            engine=engine, queue_size=queue_size, batch_max=batch_max, flood=flood
        )
        self._decider = Decider(
            max_payload_bytes=max_payload_bytes, flood=flood, not_loaded=not_loaded
        )
        self.outbox = outbox
        self._flood = flood
        # Decisions and entries are timed by the gateway's clock: never before the log's newest.
        self._clock = clock or ForwardClock(lambda: None)
        self._shares = QueueShares(outbox.queues)
        self._drafter = Drafter()
        self.stats = PipelineStats(outbox_depth=outbox.queues.rows)
        self.decided = LatencyWindow()  # received from the broker → committed
        self._last_commit = 0.0  # time.monotonic() when the last transaction ended
        # (count, future): resolved once the first ``count`` messages received are committed
        self._fences: list[tuple[int, asyncio.Future[None]]] = []

    # -- receiving (paho callback, on the loop thread) ----------------------------------------

    def receive(self, message: Inbound) -> None:
        self._intake.receive(message)  # a refusal (QueueFull) is handled again: counted then
        self.stats.received += 1

    # -- the writer ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Take batches, decide, commit, acknowledge, hand over; runs until cancelled."""
        while True:
            # A full outbox stops the writer: messages wait unacknowledged (in the queue, then in
            # the broker once the device link steps back) instead of growing the outbox further.
            await self.outbox.has_room.wait()
            # QoS 1 messages from a session the broker ended are decided all the same: the
            # broker redelivers them only if it persisted them, and a Mosquitto killed with -9
            # may not have, though it acknowledged them to the device. Twice is at-least-once;
            # never is a loss (tests/faults/test_crashes.py, device broker kill -9). Those of a
            # session the device link stepped back from are the broker's again: the intake
            # leaves them out (``Intake.take``), since decided now they would come back as
            # duplicates.
            batch = await self._intake.take()
            if batch:
                await self.process(batch)
            if self.stats.returned != self._intake.returned:
                # Settled with their batch (fences count in arrival order): each is counted in
                # ``received`` again when the broker sends it anew, and committed then.
                self.stats.returned = self._intake.returned
                self._settle()

    @property
    def failing_closed(self) -> str | None:
        """Why nothing is decided now: the database refuses a commit or a replay lookup."""
        replays = self._replays.failing if self._replays is not None else None
        return self.stats.failing_closed or replays

    async def process(self, batch: Sequence[Arrival]) -> None:
        """Decide, commit, acknowledge and hand over a batch of arrived messages."""
        replayed = 0
        if self._replays is not None and any(a.inbound.retain for a in batch):
            known = await self._replays.decided([a.inbound for a in batch])
            for position in known:  # decided once already (gateway/messages/replays.py)
                batch[position].inbound.ack()
            batch = [arrival for position, arrival in enumerate(batch) if position not in known]
            replayed = len(known)
            if not batch:
                self._settle(replayed=replayed)
                return
        now, also = self._clock.now(), self._clock.also_at()
        engine = self._engine()
        prepared = [self._prepare(engine, arrival, now, also) for arrival in batch]
        try:
            rows = await self._commit_messages(engine, prepared, now)
        except BaseException:
            for one in prepared:  # nothing of the batch committed: nothing of it is queued
                self._undo(one.taken)
            raise
        committed = elapsed()
        # The PUBACKs and the rows a forwarder publishes at once (gateway/messages/forwarder.py)
        # leave as this block ends, in this turn of the loop, each connection's in one send.
        with WritesHeld():
            for arrival in batch:
                arrival.inbound.ack()
                self.decided.add(committed - arrival.inbound.received)
            self._settle(committed=len(batch), replayed=replayed)
            self._hand_over(rows)

    async def committed_through(self, received: int) -> None:
        """Wait until the first ``received`` messages taken in are committed: the queue is
        first in, first out, so every message received before that count is (a handover's
        fence: gateway/operations/handover.py). A replayed message (acknowledged as decided
        before) counts as committed, and so does one left to the broker (committed when it comes
        again, counted again then)."""
        if self._settled() >= received:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fences.append((received, future))
        await future

    def _settled(self) -> int:
        return self.stats.committed + self.stats.replayed + self.stats.returned

    def _settle(self, *, committed: int = 0, replayed: int = 0) -> None:
        # A batch's replays are counted with its commit, not before: fences count messages in
        # arrival order, and one after a replay in the batch is not committed until then.
        self.stats.committed += committed
        self.stats.replayed += replayed
        if self._fences:
            self._pass_fences()

    def _pass_fences(self) -> None:
        settled = self._settled()
        waiting = []
        for count, future in self._fences:
            if count <= settled:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                waiting.append((count, future))
        self._fences = waiting

    async def record(self, decisions: Sequence[Decision], now: datetime) -> list[OutboxRow]:
        """Commit decisions that did not come from a device message (aggregation windows)."""
        engine = self._engine()
        drafts: list[EntryDraft] = []
        releases: list[Release] = []
        taken: list[Admission] = []
        try:
            for decided in decisions:
                digest = hashlib.sha256(decided.payload or b"").digest()
                decision = self._admit(engine, decided, taken)
                if decision.payload is not None and decision.outcome is not Outcome.WITHHELD:
                    releases.append((len(drafts), decision, None))
                drafts.append(self._draft(engine, decision, digest, now))
            rows = await self._commit(engine, drafts, releases, now)
        except BaseException:
            self._undo(taken)
            raise
        self._hand_over(rows)
        return rows

    async def withhold_at_send(self, refused: Sequence[tuple[OutboxRow, Reason]]) -> None:
        """Rows that may no longer leave: delete them and record why, in one transaction."""
        now = self._clock.now()
        engine = self._engine()
        drafts = []
        for row, reason in refused:
            decision = Decision(
                customer=row.customer,
                device=row.device,
                recipient=row.recipient,
                outcome=Outcome.WITHHELD,
                grant=row.grant,
                reason=reason,
            )
            digest = hashlib.sha256(row.payload).digest()
            drafts.append(self._draft(engine, decision, digest, now))
        ids = [row.id for row, _ in refused]
        writer = self._log_writer()

        def job(conn: sqlite3.Connection) -> None:
            writer.append(drafts)
            self.outbox.delete_with(conn, ids)

        await self._transact(job, writer)

    # -- internals -------------------------------------------------------------------------------

    def _prepare(
        self, engine: Engine, arrival: Arrival, now: datetime, also: Sequence[datetime | None]
    ) -> _Prepared:
        """Decide and explain one message (``also``: ``Decider.decide``); never raises."""
        inbound = arrival.inbound
        taken: list[Admission] = []
        try:
            drafts: list[EntryDraft] = []
            releases: list[Release] = []
            digest = hashlib.sha256(inbound.payload).digest()  # once, for every recipient's entry
            for decided in self._decider.decide(engine, arrival, now, also):
                decision = self._admit(engine, decided, taken)
                if decision.payload is not None and decision.outcome is not Outcome.WITHHELD:
                    releases.append((len(drafts), decision, inbound))
                drafts.append(self._draft(engine, decision, digest, now))
            return _Prepared(inbound, drafts, releases, taken)
        except Exception as exc:
            self._undo(taken)  # withheld whole: none of its releases will be queued
            return self._failed(engine, inbound, exc, now)

    def _failed(
        self, engine: Engine, inbound: Inbound, exc: BaseException, now: datetime
    ) -> _Prepared:
        """The message withheld with reason internal_error, and the traceback logged."""
        self.stats.withheld += 1
        draft = self._drafter.failed(engine, inbound.topic, inbound.payload, exc, now)
        return _Prepared(inbound, [draft], [])

    async def _commit_messages(
        self, engine: Engine, prepared: list[_Prepared], now: datetime
    ) -> list[OutboxRow]:
        """Commit the messages' entries in one transaction; the rows to hand on. If appending
        them fails for a reason other than the database (those are retried: fail closed), find
        the message that fails by committing one at a time, and withhold it instead (each
        message's rows then handed on as its commit ends, none returned)."""
        try:
            return await self._commit(engine, *_flatten(prepared), now)
        except Exception as exc:
            if len(prepared) == 1:
                self._undo(prepared[0].taken)  # withheld instead: its releases are not queued
                prepared[0].taken.clear()
                failed = self._failed(engine, prepared[0].inbound, exc, now)
                return await self._commit(engine, failed.drafts, failed.releases, now)
            log.warning(
                "a batch of %d messages failed to commit; retrying one at a time", len(prepared)
            )
        # Each message's rows are handed on as soon as its own commit ends: between these
        # commits another writer (an aggregation window, an erasure notice) may commit and hand
        # on rows with higher ids, and a forwarder takes rows in id order: handed on only at the
        # end, these would fall behind its cursor and wait for its next session.
        for one in prepared:
            self._hand_over(await self._commit_messages(engine, [one], now))
        return []

    def _admit(self, engine: Engine, decision: Decision, taken: list[Admission]) -> Decision:
        return self._shares.admit(engine, decision, taken)

    def queue_status(self, recipient: str) -> QueueStatus:
        """``recipient``'s queue and each customer's share of it, as the policies now stand."""
        return self._shares.status(self._engine(), recipient)

    def _undo(self, taken: Sequence[Admission]) -> None:
        self._shares.undo(taken)

    def _draft(
        self, engine: Engine, decision: Decision, source_digest: bytes, now: datetime
    ) -> EntryDraft:
        if decision.outcome is Outcome.WITHHELD:
            self.stats.withheld += 1
        elif decision.outcome is Outcome.ALTERED:
            self.stats.altered += 1
        else:
            self.stats.shared += 1
        return self._drafter.draft(engine, decision, source_digest, now)

    async def _commit(
        self, engine: Engine, drafts: list[EntryDraft], releases: list[Release], now: datetime
    ) -> list[OutboxRow]:
        """``engine``: the one the drafts were decided under (asked in the same turn)."""
        writer = self._log_writer()
        created = us_from_at(now)
        new_keys = self._keyring.take_new()
        result: list[OutboxRow] = []

        def job(conn: sqlite3.Connection) -> list[OutboxRow]:
            appended = writer.append(drafts)
            if new_keys:
                Keyring.persist(conn, new_keys, created)
            specs = []
            for index, decision, inbound in releases:
                assert (
                    decision.recipient and decision.customer and decision.device and decision.grant
                )
                assert decision.topic is not None and decision.payload is not None
                topic = self._topic_prefix.get(decision.recipient, "") + decision.topic
                kept = (
                    inbound
                    if inbound is not None and keeps_source(inbound.payload, decision.payload)
                    else None
                )
                specs.append(
                    (
                        appended[index].seq,
                        decision.recipient,
                        decision.customer,
                        decision.device,
                        decision.grant,
                        topic,
                        decision.payload,
                        created,
                        decision.policy_version,
                        kept.topic if kept is not None else None,
                        kept.payload if kept is not None else None,
                        kept.retain if kept is not None else False,
                        release_at(engine, decision, now),
                    )
                )
            return self.outbox.insert(conn, specs)

        backoff: Backoff | None = None  # made on the first failure only: off the usual path
        failing_since = 0.0
        while True:
            try:
                result = await self._transact(job, writer)
                break
            except StoreError as exc:
                # Fail closed: nothing acknowledged, nothing forwarded, retry until the disk is back.
                self.stats.commit_failures += 1
                if self.stats.failing_closed is None:
                    log.error("cannot record decisions, so nothing is forwarded: %s", exc)
                    failing_since = elapsed()
                self.stats.failing_closed = str(exc)
                backoff = backoff or database_retry()
                await backoff.sleep()
            except Exception:
                # Not the database: one message's entries (``_commit_messages`` finds which).
                # Pseudonym keys made for this batch are written with the next one instead.
                self._keyring.restore(new_keys)
                raise
        if self.stats.failing_closed is not None:
            log.warning("the database takes writes again; forwarding resumes")
            self.stats.failing_closed = None
            if self._flood is not None and failing_since:
                # Nothing was acknowledged meanwhile, so the broker held the devices' messages
                # and now hands them over at once: judged by arrival they would look like a
                # flood and be withheld as one, a false reason. Credit what each device earned
                # at its allowed rate while we were failing closed, as after a pause of intake.
                now_mono = elapsed()
                self._flood.credit(now_mono - failing_since, now_mono)
        self.stats.batches += 1
        self.stats.entries += len(drafts)
        self.stats.last_commit = time.time()
        return result

    async def _transact(
        self, job: Callable[[sqlite3.Connection], object], writer: LogWriter
    ) -> list[OutboxRow]:
        # A quiet site (nothing waiting, no commit for QUIET_S): the COMMIT runs on the loop,
        # without the hand-over to the helper thread (gateway/messages/store.py). Otherwise the
        # store decides by how fast the disk has been: on a slow one the loop reads and decides
        # while the disk syncs (an fsync of several ms on the loop stopped reading for its whole
        # wait: p99 55 ms in one run at 1,000 msg/s).
        quiet = time.monotonic() - self._last_commit >= QUIET_S
        result = await self._store.transaction(
            job,
            on_rollback=writer.rolled_back,
            on_commit=writer.committed,
            idle=quiet and self._intake.empty(),
        )
        self._last_commit = time.monotonic()
        return result if isinstance(result, list) else []

    def _hand_over(self, rows: Sequence[OutboxRow]) -> None:
        # The queues counted these rows when they were admitted, before the commit.
        self.outbox.hand_over(rows)

    @property
    def queues(self) -> RecipientQueues:
        return self.outbox.queues

    @property
    def outbox_full(self) -> asyncio.Event:
        """The outbox's room signal (it owns it; read here for status)."""
        return self.outbox.full

    def pause_reason(self) -> str | None:
        return self.outbox.pause_reason()

    def set_limits(self, *, batch_max: int, max_payload_bytes: int, outbox_max_rows: int) -> None:
        """A configuration reload: the next batch, message and outbox check use these."""
        self._intake.batch_max = batch_max
        self._decider.max_payload_bytes = max_payload_bytes
        self.outbox.max_rows = outbox_max_rows


def _flatten(prepared: Sequence[_Prepared]) -> tuple[list[EntryDraft], list[Release]]:
    if len(prepared) == 1:  # a batch of one (most at a steady rate): its lists as they are
        return prepared[0].drafts, prepared[0].releases
    drafts: list[EntryDraft] = []
    releases: list[Release] = []
    for one in prepared:
        releases += [(len(drafts) + i, decision, src) for i, decision, src in one.releases]
        drafts += one.drafts
    return drafts, releases
