"""Moving a running customer between instances: each instance's side of ``einblick handover``.

The command (gateway/commands/handover.py) drives five control operations, in this order:

1. ``handover_prepare`` on the old instance A: A must own the customer C and hold its tree. It
   answers with the MQTT filters it holds for C, and from now on counts C's messages it takes
   from the broker (``overlap``).
2. ``handover_hold`` on the new instance B: B opens its hold session for C, subscribed to those
   filters (gateway/operations/holds.py). From its SUBACK (``t0``) the broker queues every
   message of C for B, and answers with the key B signs with.
3. ``handover_release`` on A: A stops taking C's messages: its own session unsubscribes C's
   filters (UNSUBACK at ``t1``; a reconnect does not subscribe them again; a broker that does
   not confirm in time is asked again, with backoff, for ``RELEASE_RETRY_S``:
   gateway/operations/release_retry.py). Then a *fence*: A subscribes to a topic of its own,
   publishes one message to it and waits for it to come back on its session. The broker
   delivers to one session in order, so every message of C it had queued for A arrived before
   the fence; A waits until its pipeline has committed everything that arrived before the
   fence, closes C's aggregation windows and records them, and waits until C's queued releases
   have left (its outbox has no row of C). Only then ``close_tree``: the final entry, a
   checkpoint, the record signed by A's key; C's policy stops running on A. If C's releases
   do not leave in time (an upstream down, a grant that releases at the end of the hour), A
   takes C's filters back, decides what only B's hold received since ``t1`` and ends the hold
   (gateway/operations/drain.py), then refuses: nothing moved, nothing lost. A closes the tree
   only while the command still waits for the answer (``answer_within_s``); an answer lost
   after it closed is found by the command asking ``prepare`` again, and the move goes on.
4. ``handover_take`` on B: first B notes where A's copy of C's personal data is, kept until
   A cleans up, so an erasure on B reaches it (gateway/operations/old_copies.py). Then
   ``read_tree`` from A's database, ``adopt_tree`` and the record
   (``open_tree_record``) in one transaction, C's consents, erasures and pseudonym keys with
   it; C's policy runs on B. Then the hold is drained (gateway/operations/drain.py): B
   connects it and fences it (its backlog is then in the pipeline), subscribes its own session
   to C's filters (SUBACK at ``t2``), unsubscribes the hold (UNSUBACK at ``t3``), fences it
   again, waits for the pipeline to commit what arrived, and ends the hold session.
5. ``handover_drop`` on B: only when the release was refused (3). B forgets the hold if the
   broker says it is gone; one A could not drain is kept for the same command run again.

Why the old instance waits for C's queued releases instead of handing them over with the tree:
a row leaves under the policy in force when it is sent (gateway/messages/sendtime.py), and a row
withheld then is recorded in C's tree. On A, after the move, that entry would follow the final
entry of a closed tree; moved to B, the row would be sent by an instance that did not decide it.
So A sends what it decided while it still owns the tree, and refuses the move while it cannot.

Duplicates, exactly: a message of C published between ``t0`` and ``t1`` is delivered to A's
session and to the hold; one published between ``t2`` and ``t3`` to B's session and to the
hold. Each is decided (and forwarded) twice. No message is delivered to neither: before ``t1``
A's session has it, from ``t0`` to ``t3`` the hold, from ``t2`` B's session. The instances count
an upper bound each: A the messages of C its session delivered after ``prepare`` (which came
before ``t0``) up to its fence, B those its own session delivered from the moment C's policy
runs on B (before ``t2``) up to a fence on that session sent after ``t3``; the command prints
their sum.

Every step can be run again: ``prepare`` and ``hold`` are idempotent, ``release`` on a closed
tree returns the same record (Ed25519 signatures are deterministic), ``take`` on an adopted tree
skips to the drain, and a drained hold is gone. What the logs record (gateway/log/moves.py)
decides ownership on every instance after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Config
from gateway.log.keys import PublicKey, Signer
from gateway.log.transfer import ClosedTree, adopt_tree, close_tree, open_tree_record, read_tree
from gateway.log.writer import LogWriter
from gateway.messages.admission import PolicyAdmission
from gateway.messages.clock import GatewayClock
from gateway.messages.device_link import DeviceLink
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.outbox import queued_of
from gateway.messages.pipeline import Pipeline
from gateway.messages.pseudonyms import Keyring
from gateway.messages.store import Store
from gateway.messages.subscriptions import owned_filters
from gateway.operations.control import Handler, bind
from gateway.operations.drain import drain_hold, held_in_full, take_back
from gateway.operations.fences import Fences
from gateway.operations.handover_model import (
    HANDOVER_DROP,
    HANDOVER_HOLD,
    HANDOVER_PREPARE,
    HANDOVER_RELEASE,
    HANDOVER_TAKE,
    RELEASE_RETRY_S,
    ClosedRecord,
    DropReply,
    HandoverError,
    HandoverRequest,
    HoldReply,
    HoldRequest,
    PrepareReply,
    ReleaseReply,
    ReleaseRequest,
    TakeReply,
    TakeRequest,
)
from gateway.operations.holds import Hold, end_session, open_hold, read_hold, still_held
from gateway.operations.moved import note_release
from gateway.operations.old_copies import note_take
from gateway.operations.release_retry import let_go
from gateway.rights.consent import ConsentBook

__all__ = [
    "HandoverParts",
    "Handovers",
    "handover_handlers",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandoverParts:
    """What a handover reads and acts on (the gateway composes them: gateway/app.py)."""

    config: Callable[[], Config]
    admission: PolicyAdmission
    device_link: DeviceLink
    pipeline: Callable[[], Pipeline]
    store: Store
    writer: Callable[[], LogWriter]
    signer: Signer
    keyring: Keyring
    consents: ConsentBook
    flood: FloodGuard
    skip: Callable[[Inbound], bool]  # a retained replay: acknowledged, not decided
    endpoint: Callable[[], Endpoint]  # the instance's own session on the device broker
    policies_applied: Callable[[], None]  # a policy started running: ACL and subscriptions
    clock: GatewayClock


@dataclass
class Handovers:
    parts: HandoverParts
    leaving: set[str] = field(default_factory=set)  # filters given up, log not closed yet
    retry_s: float = RELEASE_RETRY_S  # how long the release asks the broker again
    gone: set[str] = field(default_factory=set)  # closed in this run (the log says so too)
    _counting: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fences = Fences(self.parts.pipeline)

    @property
    def excluded(self) -> set[str]:
        """Customers this instance's own session must not subscribe to."""
        return self.leaving | self.gone

    # -- the device link's messages ----------------------------------------------------------

    def sees(self, message: Inbound) -> bool:
        """On every message of the instance's own session: True for a fence (acknowledged,
        not decided); counts the messages of customers being moved."""
        if self.fences.taken(message.topic):
            return True
        if self._counting:
            device = self.parts.admission.engine.device_for(message.topic)
            if device is not None and device.customer in self._counting:
                self._counting[device.customer] += 1
        return False

    # -- the old instance --------------------------------------------------------------------

    def _handed_out(self, customer: str) -> bool:
        return customer in self.gone or customer in self.parts.config().moves[0]

    async def prepare(self, request: HandoverRequest) -> PrepareReply:
        customer = request.customer
        config = self.parts.config()
        if self._handed_out(customer):
            return PrepareReply(filters=[], closed=True)
        if not config.owns(customer):
            raise HandoverError(
                f"instance {config.instance!r} does not own customer {customer!r}; hand it "
                "over from the instance that does (einblick status --instances … shows them)"
            )
        if self.parts.writer().tree_size(customer) == 0:
            raise HandoverError(
                f"customer {customer!r} has no log on instance {config.instance!r} yet, so there "
                "is no history to hand over: list the customer under the new instance in "
                "cluster.instances on every instance and restart them"
            )
        filters = owned_filters([customer], self.parts.admission.declared_topics())
        self._counting.setdefault(customer, 0)
        return PrepareReply(filters=filters, closed=False)

    async def release(self, request: ReleaseRequest) -> ReleaseReply:
        customer = request.customer
        what = f"handover of {customer!r}"
        within = request.answer_within_s  # every wait below ends by then: nobody waits longer
        deadline = time.monotonic() + (float("inf") if within is None else within)
        if self._handed_out(customer):
            closed = await self._close(request)
            return ReleaseReply(
                closed=ClosedRecord.of(closed), overlap=self._counting.get(customer, 0)
            )
        config = self.parts.config()
        if not config.owns(customer):
            raise HandoverError(f"instance {config.instance!r} does not own {customer!r}")
        link = self.parts.device_link
        if link.connection is None or not link.connected:
            raise HandoverError(
                f"{what}: instance {config.instance!r} is not connected to the device broker "
                "now; nothing moved. Run the same command again when it is (einblick status)"
            )
        filters = owned_filters([customer], self.parts.admission.declared_topics())
        held_in_full(customer, request.hold, filters)
        self._counting.setdefault(customer, 0)
        self.leaving.add(customer)
        t1 = time.monotonic()  # no later than the UNSUBACK: only the hold has C's messages since
        try:
            # C's filters go: UNSUBACK at t1. A reconnect meanwhile applies the same set, and
            # the fence goes on the session that confirmed: the one open now may be gone.
            released_on = await let_go(
                lambda: link.connection if link.connected else None,
                link.subscriptions.apply,
                what,
                within=min(self.retry_s, deadline - time.monotonic()),
            )
            await self.fences.wait(released_on, what)
            await self._flush_windows(customer)
            await self._sent(customer, max(0.0, min(request.wait_s, deadline - time.monotonic())))
            # From here nothing more may enter C's tree on this instance: a consent action
            # waiting behind the closing transaction would follow the final entry. Without the
            # policy it is refused ("no policy for customer").
            self.parts.admission.engine.remove(customer)
            closed = await self._close(request, deadline)
        except BaseException as exc:
            self.leaving.discard(customer)
            self._counting.pop(customer, None)
            handed_out = self._handed_out(customer)
            if not handed_out:
                self.parts.admission.recompile([customer])  # C's policy runs here again
            link.changed()  # C's filters again, or (handed out after all) not
            if handed_out or not isinstance(exc, Exception):
                raise  # stopped: the hold keeps what it holds for the same command run again
            # what only the hold received since the UNSUBSCRIBE is decided here, or kept
            pipe = lambda hold: self._pipe(hold, time.monotonic() - t1)  # noqa: E731
            own = self.parts.endpoint()
            raise await take_back(request, exc, pipe, own, config=config, filters=filters) from exc
        self.gone.add(customer)
        self.leaving.discard(customer)
        self._stop_running(customer)
        log.warning(
            "customer %r handed over to %s at %d entries; this instance no longer decides it",
            customer,
            closed.new_origin,
            closed.size,
        )
        return ReleaseReply(closed=ClosedRecord.of(closed), overlap=self._counting.pop(customer, 0))

    async def _flush_windows(self, customer: str) -> None:
        """C's open aggregation windows close now and their summaries are recorded in its tree
        (as at a policy change): what they took in must not stay behind in memory."""
        engine = self.parts.admission.engine
        policy = engine.policy(customer)
        if policy is None:
            return
        engine.replace(policy)
        now = self.parts.clock.now()
        decisions = engine.flush(now, self.parts.clock.also_at())
        if decisions:
            await self.parts.pipeline().record(decisions, now)

    async def _sent(self, customer: str, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            waiting = await self.parts.store.read(lambda conn: queued_of(conn, customer))
            if not waiting:
                return
            if time.monotonic() >= deadline:
                which = ", ".join(f"{n} for {r}" for r, n in sorted(waiting.items()))
                raise HandoverError(
                    f"handover of {customer!r}: its releases still wait to be sent ({which}) "
                    f"after {wait_s:.0f} s; an instance sends what it decided before it gives "
                    "the log away. Nothing moved and the customer stays here. Run the command "
                    "again when the recipient is reachable (einblick status), or after the end "
                    "of the hour for a grant with release: end_of_unit"
                )
            await asyncio.sleep(0.1)  # rows leave as recipients acknowledge them

    async def _close(self, request: ReleaseRequest, deadline: float = float("inf")) -> ClosedTree:
        customer = request.customer
        writer = self.parts.writer()
        try:
            new_key = PublicKey(bytes.fromhex(request.new_key))
        except ValueError as exc:
            raise HandoverError(f"handover of {customer!r}: new_key is not a public key") from exc
        now = self.parts.clock.now()

        def job(conn: sqlite3.Connection) -> ClosedTree:
            if queued_of(conn, customer):  # decided since _sent looked: never close with rows
                raise HandoverError(
                    f"handover of {customer!r}: a release was queued while closing; run again"
                )
            if time.monotonic() > deadline:  # nobody waits for it
                raise HandoverError(
                    f"handover of {customer!r}: the command stopped waiting for this release "
                    "before the log could be closed; nothing moved. Run the same command again"
                )
            closed = close_tree(
                conn, writer, customer, new_origin=request.to_origin, new_key=new_key, now=now
            )
            # in the same transaction: whatever waits for the store next (a consent action, a
            # window's summary) finds the tree closed, before this coroutine resumes
            writer.closed.add(customer)
            return closed

        def rolled_back() -> None:
            if customer not in self.parts.config().moves[0]:
                writer.closed.discard(customer)
            writer.rolled_back()

        closed = await self.parts.store.transaction(
            job, on_rollback=rolled_back, on_commit=writer.committed
        )
        config = self.parts.config()
        handed_out, taken_over = config.moves
        config.record_moves(handed_out | {customer}, taken_over - {customer})
        note_release(config.data_path, request)  # its copy here goes once the move completes
        return closed

    def _stop_running(self, customer: str) -> None:
        admission = self.parts.admission
        for path, loaded in list(admission.policies.files.items()):
            if loaded.customer == customer:
                admission.policies.load(path)  # set aside: another instance owns it now
        admission.engine.remove(customer)

    # -- the new instance --------------------------------------------------------------------

    async def hold(self, request: HoldRequest) -> HoldReply:
        customer = request.customer
        config = self.parts.config()
        if config.owns(customer) and read_hold(config.data_path, customer) is None:
            raise HandoverError(
                f"instance {config.instance!r} already owns customer {customer!r}: nothing to "
                "move here"
            )
        hold = await open_hold(config.data_path, self.parts.endpoint(), customer, request.filters)
        return HoldReply(
            client_id=hold.client_id,
            since=hold.since,
            key=self.parts.signer.public.raw.hex(),
            filters=hold.filters,
        )

    async def drop(self, request: HandoverRequest) -> DropReply:
        customer = request.customer
        config = self.parts.config()
        if customer in config.moves[1]:
            raise HandoverError(
                f"instance {config.instance!r} has taken over {customer!r}'s log: its hold "
                "session holds messages nobody else decides. Run the handover again to drain it"
            )
        known = read_hold(config.data_path, customer) is not None
        if await still_held(self.parts.endpoint(), customer):
            # the old instance ends the hold once it decided what only the hold received (a
            # refused release): a hold still there may hold messages nobody else has
            raise HandoverError(
                f"the hold session for {customer!r} on instance {config.instance!r} is kept: "
                "it may hold messages of the customer that only it received. Finish the move, "
                f"and this instance decides them: einblick handover --customer {customer} --to "
                f"{config.instance} --instances <every instance's einblick.yaml>"
            )
        await end_session(config.data_path, self.parts.endpoint(), customer)
        return DropReply(dropped=known)

    async def take(self, request: TakeRequest) -> TakeReply:
        customer = request.closed.customer
        config = self.parts.config()
        hold = read_hold(config.data_path, customer)
        if customer not in config.moves[1]:
            if hold is None:
                raise HandoverError(
                    f"instance {config.instance!r} holds no messages of {customer!r} (no hold "
                    "session): taking the log over now could lose some. Run the whole "
                    "einblick handover command, which opens the hold first"
                )
            await self._adopt(request)
        # C's withdrawn consents, objections and restrictions came with the log: into the
        # book before the policy runs, so the engine holds them from its first decision
        await self.parts.store.read(self.parts.consents.load)
        if hold is not None:
            # from the moment C's policy runs here, this instance's own session may subscribe
            # to C (a policy change elsewhere makes it apply its set): count from before then
            self._counting.setdefault(customer, 0)
        self._run(customer)
        entries = self.parts.writer().tree_size(customer)
        if hold is None:
            self.parts.policies_applied()
            return TakeReply(entries=entries, drained=0, overlap=0)
        drained, overlap = await self._drain(hold)
        self.parts.policies_applied()
        return TakeReply(entries=entries, drained=drained, overlap=overlap)

    async def _adopt(self, request: TakeRequest) -> None:
        record = request.closed
        customer = record.customer
        closed = record.tree()
        if closed.new_origin != self.parts.writer().origin_of(customer):
            raise HandoverError(
                f"handover of {customer!r}: the log was handed to {closed.new_origin!r}, not to "
                f"this instance ({self.parts.writer().origin_of(customer)!r})"
            )
        # Before the log is ours: an erasure here must reach the copy the old instance keeps
        # until its clean-up, and a crash after the commit must not lose where it is.
        old_instance = closed.old_origin.split("/", 1)[0]
        note_take(
            self.parts.config(), customer, old_instance, request.source_db, request.source_socket
        )
        rows = await asyncio.to_thread(read_tree, Path(request.source_db), customer)
        writer = self.parts.writer()
        signer = self.parts.signer
        now = self.parts.clock.now()

        def job(conn: sqlite3.Connection) -> None:
            adopt_tree(conn, rows)
            writer.reload()
            size, root = writer.tree_size(customer), writer.head(customer)[1]
            if (size, root) != (closed.size, closed.root):
                raise HandoverError(
                    f"handover of {customer!r}: {request.source_db} holds a tree of {size} "
                    f"entries with root {root.hex()[:16]}…, the old instance closed it at "
                    f"{closed.size} entries with root {closed.root.hex()[:16]}…: give the old "
                    "instance's own database (its configuration in --instances)"
                )
            writer.append([open_tree_record(closed, signer, now)])

        await self.parts.store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed
        )
        handed_out, taken_over = self.parts.config().moves
        self.parts.config().record_moves(handed_out - {customer}, taken_over | {customer})
        await self.parts.store.read(lambda conn: self.parts.keyring.load_customer(conn, customer))
        log.warning("customer %r's log taken over from %s", customer, closed.old_origin)

    def _run(self, customer: str) -> None:
        """C's policy runs here (the shared policies directory has it, set aside until now)."""
        admission = self.parts.admission
        if not admission.running(customer):
            for path in sorted(admission.policies.elsewhere):
                admission.apply(path)

    async def _pipe(self, hold: Hold, gap: float) -> int:
        """``hold``'s messages into this instance's pipeline, its filters onto this instance's
        own session (drain.py; ``gap`` by this instance's clock); how many the hold delivered."""
        parts = self.parts
        return await drain_hold(
            hold,
            link=parts.device_link,
            fences=self.fences,
            pipeline=parts.pipeline,
            flood=parts.flood,
            skip=parts.skip,
            endpoint=parts.endpoint(),
            gap=gap,
        )

    async def _drain(self, hold: Hold) -> tuple[int, int]:
        drained = await self._pipe(hold, time.time() - hold.since)  # its own record
        overlap = self._counting.pop(hold.customer, 0)
        parts = self.parts
        await end_session(parts.config().data_path, parts.endpoint(), hold.customer)
        return drained, overlap


def handover_handlers(handovers: Handovers) -> dict[str, Handler]:
    """The handover's control operations by name, for the control socket."""
    return {
        HANDOVER_PREPARE.name: bind(HANDOVER_PREPARE, handovers.prepare),
        HANDOVER_HOLD.name: bind(HANDOVER_HOLD, handovers.hold),
        HANDOVER_RELEASE.name: bind(HANDOVER_RELEASE, handovers.release),
        HANDOVER_TAKE.name: bind(HANDOVER_TAKE, handovers.take),
        HANDOVER_DROP.name: bind(HANDOVER_DROP, handovers.drop),
    }
