"""One forwarder per recipient: publishes that recipient's outbox rows, in order, at QoS 1.

Rows reach a forwarder two ways. While it keeps up, the pipeline hands it each committed row at
once (``offer``), so the hot path never reads back what it just wrote. When the forwarder has
nothing else to do (its task waits for offers), room in its window, and the send-time check needs
no transaction for the rows (``settled_now``: every row leaves as decided), ``offer`` publishes them
itself, in the turn of the loop that committed them: the device's PUBACK and the upstream PUBLISH
leave together, and the forwarder's task is not woken for them. Otherwise the rows wait in its
queue for the task, which checks them with ``at_send``. When it falls behind — its
upstream is down, or its in-memory window is full — it stops taking offers and reads its backlog
from the outbox by id instead, until it has caught up. Either way rows go out in id order, which is
commit order, so each device's messages arrive in the order they were decided.

Right before a batch is published the forwarder hands it to ``at_send``
(gateway/messages/sendtime.py): a row leaves under the policy in force now, not the one it was
decided under. A consent may have been withdrawn, a grant may have expired or left its hours, or
the policy may have changed while the row waited for an upstream that was down; such a row is
decided again (what leaves may change) or withheld, and the log says so before anything leaves.
Rows of a checked batch that wait for room in the window are checked again, each holding its room
so that nothing waits between that check and its send, once what the check judged by moved (a
consent withdrawn or given, an objection or restriction, a policy reloaded: the customer is told
that what still waits is held back) or the check is older than ``CHECKED_FOR_S``.

A row whose grant says ``release: end_of_unit`` carries ``release_at`` (gateway/messages/release.py):
it is held, by id only, until then, checked again at send time, and published; not holding up others.

An erasure deletes rows a forwarder may hold in memory, checked and about to leave
(``Outbox.erasing``): while one runs the forwarder reads and publishes nothing, and a batch read
before it began is not published further; its unsent rest is read from the outbox again.

Rows are deleted after PUBACK, in batches (gateway/messages/acked.py). A crash in between sends them again: at-least-once,
with duplicates bounded by ``window``.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.backoff import Backoff, database_retry
from gateway.config import RecipientConfig
from gateway.errors import StoreError
from gateway.messages.acked import AckedRows
from gateway.messages.clock import elapsed
from gateway.messages.endpoint import ConnectionLost, Endpoint, Inbound, MqttError, NotSent
from gateway.messages.latency import LatencyWindow
from gateway.messages.mqtt import MqttConnection
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.send_window import SendWindow
from gateway.messages.sendtime import Settled

__all__ = ["Forwarder", "ForwarderState"]

log = logging.getLogger(__name__)

# How long a send-time check stays good for rows waiting for room in the window: a row checked
# at 21:59:59 under hours until 22:00 and held up by a slow recipient is checked again.
CHECKED_FOR_S = 1.0

# Reconnecting to a recipient's broker: first try after about half a second, at most a minute.
RECONNECT_FIRST_S = 0.5
RECONNECT_CAP_S = 60.0

# Rows about to be published, with since when the recipient has been reachable (µs since the
# epoch) and which of them an earlier attempt may have delivered → what may leave now (recorded
# and updated before it returns).
AtSend = Callable[
    [Sequence[OutboxRow], int | None, Callable[[OutboxRow], bool]], Awaitable[Settled]
]
# The same check when no row needs a transaction; None: ``AtSend`` must run (sendtime.py).
SettledNow = Callable[[Sequence[OutboxRow]], Settled | None]


@dataclass(slots=True)
class ForwarderState:
    """What ``einblick status`` and the TUI show about one upstream."""

    recipient: str
    connected: bool = False
    last_error: str | None = None
    since: float = 0.0  # unix time of the last state change
    sent: int = 0
    withheld_at_send: int = 0
    in_flight: int = 0
    reconnects: int = 0
    backlog: bool = False
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=1))


class Forwarder:
    def __init__(
        self,
        recipient: RecipientConfig,
        endpoint: Endpoint,
        outbox: Outbox,
        *,
        at_send: AtSend,
        checked: Callable[[], object],
        settled_now: SettledNow | None = None,
        window: int = 500,
        batch: int = 1000,
        subscribe: str | None = None,
        on_message: Callable[[Inbound], None] | None = None,
    ) -> None:
        self.recipient = recipient
        self.endpoint = endpoint
        self.outbox = outbox
        self._at_send = at_send
        self._checked = checked
        self._settled_now = settled_now
        self._window = SendWindow(window)
        self._window_size = window
        self._batch = batch
        self._queue: deque[OutboxRow] = deque()
        self._live = False  # True: take rows from offers; False: read the backlog from the db
        self._taken = 0  # highest row id handed to the connection in this session
        self._read_at = 0  # ``outbox.erasures`` when the rows being sent were read
        self._wake: asyncio.Future[None] | None = None
        # The session the task waits on with nothing else to do: ``offer`` may publish on it.
        self._parked: MqttConnection | None = None
        self._acks = AckedRows(recipient.name, outbox, self._window)  # never resend these
        # (release_at µs, id) of rows held until the end of their unit; a heap, ids only, so a
        # day of held rows costs memory for two integers each.
        self._held: list[tuple[int, int]] = []
        # Since when the recipient has been reachable (µs): from the session that opened after it
        # was last lost or refused; a session the gateway ended itself (a database refusing) does
        # not reset it. A held row due since then leaves on time (sendtime_rules.py).
        self._reachable_us: int | None = None
        # Rows an earlier attempt may have delivered (sendtime_text MAYBE_SENT): every row up to
        # what one before it, or the last run, may have handed over (handed.py) unless held
        # beyond this moment, and each published since whose connection ended unacknowledged.
        self._lease = outbox.handed.lease(recipient.name)
        self._earlier = (self._lease.earlier(outbox.last_id), time.time_ns() // 1000)
        self._unconfirmed: set[int] = set()
        # What the recipient sends back on the same link (erasure acknowledgements), if anything.
        self._subscribe = subscribe
        self._on_message = on_message
        self.state = ForwarderState(recipient.name)
        self.delivered = LatencyWindow()  # into the outbox → acknowledged by the recipient's broker

    # -- called by the pipeline ------------------------------------------------------------------

    def offer(self, rows: Sequence[OutboxRow]) -> None:
        """Committed rows for this recipient, in id order."""
        if not rows:
            return
        if self._live and len(self._queue) + len(rows) <= self._batch:
            if not self._queue and self._send_now(rows):
                return
            self._queue.extend(rows)
        else:
            self._live = False
            self._queue.clear()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _send_now(self, rows: Sequence[OutboxRow]) -> bool:
        """Publish committed ``rows`` in this turn if the task has nothing else to do, the window
        has room for them all and none needs more than ``settled_now`` (module text); False:
        nothing was sent, the task takes them."""
        connection = self._parked
        if (
            connection is None
            or self._settled_now is None
            or self._wake is None
            or self._wake.done()  # the task runs next: it may be reading rows already
            or connection.closed.done()
            # An erasure runs, or ran since the task last read: these may be what it deleted.
            or self._read_at != self.outbox.erasures
            or self._window.free < len(rows)
            or (self._held and self._held[0][0] <= time.time_ns() // 1000)
            or any(row.release_at is not None for row in rows)  # the task keeps the held heap
        ):
            return False
        fresh = [r for r in rows if r.id > self._taken and r.id not in self._acks]
        if not fresh:
            return True
        if not self._lease.covers(fresh[-1].id):
            return False  # the task writes the lease first
        try:
            settled = self._settled_now(fresh)
        except Exception:  # the task's own check meets it again and handles it as ever
            return False
        if settled is None or settled.withheld:
            return False
        self._taken = fresh[-1].id
        for row in settled.leave:
            self._window.free -= 1
            try:
                self._send(connection, row)
            except Exception as exc:  # never out of ``offer``: the pipeline's writer called it
                # A publish that failed: the row stays in the outbox for the next session.
                self._published(row.id, row.queued, row.customer, len(row.payload), exc)
        return True

    def _send(self, connection: MqttConnection, row: OutboxRow) -> None:
        self.state.in_flight += 1  # before send: its answer may come before it returns
        connection.send(
            row.topic,
            row.payload,
            self.recipient.qos,
            functools.partial(self._published, row.id, row.queued, row.customer, len(row.payload)),
        )

    def may_have_sent(self, row: OutboxRow) -> bool:
        """Whether an earlier attempt may have delivered ``row`` (see ``_earlier``). Asked by the
        send-time check only of rows it records, never of a batch that leaves as it is."""
        last_id, made_us = self._earlier
        return (
            row.id in self._unconfirmed
            or row.id in self._acks  # acknowledged, its delete not committed (or failed)
            or (row.id <= last_id and (row.release_at is None or row.release_at <= made_us))
        )

    def maybe_sent(self, rows: Sequence[OutboxRow]) -> set[int]:
        """The ids of ``rows`` an earlier attempt may have delivered."""
        return {r.id for r in rows if self.may_have_sent(r)}

    def reread(self) -> None:
        """Rows were deleted from the outbox (an erasure): drop the rows held in memory and
        read the backlog from the database again."""
        self._live = False
        self._queue.clear()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def delete_delivered(self) -> None:
        """At shutdown: delete the rows the recipient has acknowledged (``AckedRows``)."""
        await self._acks.delete_all()

    # -- tasks ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, pump, reconnect with jittered backoff; runs until cancelled."""
        backoff = Backoff(RECONNECT_FIRST_S, RECONNECT_CAP_S)
        stalled = database_retry()
        failing: str | None = None  # the failure on this side the last session ended on
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._acks.run(), name=f"forwarder-{self.recipient.name}-acks")
            while True:
                connection = MqttConnection(
                    self.endpoint,
                    on_message=self._on_message,
                    clean_session=True,
                    max_inflight=self._window_size,
                )
                try:
                    await connection.open()
                    if self._subscribe is not None:
                        await self._listen(connection, self._subscribe)
                except MqttError as exc:
                    await connection.close()
                    self._reachable_us = None
                    self._set_down(str(exc))
                    delay = backoff.next_delay()
                    log.warning(
                        "upstream %s: %s; retrying in %.1f s", self.recipient.name, exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                backoff.reset()
                if self._reachable_us is None:
                    self._reachable_us = time.time_ns() // 1000
                self.state.connected = True
                self.state.last_error = None
                self.state.since = _now()
                log.info(
                    "upstream %s: connected to %s", self.recipient.name, self.endpoint.describe()
                )
                refused: Exception | None = None
                try:
                    await self._pump(connection)
                except Exception as exc:  # this recipient's, not the gateway's to end
                    refused = exc
                finally:
                    await connection.close()
                self.state.reconnects += 1
                if refused is not None:
                    # A full disk or a lock refused the send-time check, an outbox read or the
                    # lease (handed.py), or the check failed (a bug: traceback logged). Nothing
                    # unchecked left; a new session reads the rows again, on its own backoff.
                    delay = stalled.next_delay()
                    bug = not isinstance(refused, StoreError)
                    what = (
                        refused.what if isinstance(refused, StoreError) else "the send-time check"
                    )
                    # Said once while the same failure lasts (a full disk for an hour is one
                    # error, not one every few seconds); status shows it all along.
                    again = failing == f"{what}: {refused}"
                    failing = f"{what}: {refused}"
                    self._set_down(failing)
                    why = f"nothing is sent while {what} fails ({refused})"
                    name = self.recipient.name
                    level = logging.DEBUG if again else logging.ERROR
                    log.log(
                        level, "upstream %s: %s; again in %.1f s", name, why, delay, exc_info=bug
                    )
                    await asyncio.sleep(delay)
                    continue
                stalled.reset()
                failing = None
                self._reachable_us = None  # lost (or closed): away until a session opens again
                self._set_down(await connection.closed if connection.closed.done() else "closed")

    async def _listen(self, connection: MqttConnection, topic: str) -> None:
        try:
            await connection.subscribe(topic, 1)
        except ConnectionLost:
            raise
        except (MqttError, TimeoutError) as exc:
            # Not fatal: forwarding goes on; only acknowledgements cannot arrive this way.
            log.warning("upstream %s: cannot subscribe to %r: %s", self.recipient.name, topic, exc)

    def _set_down(self, why: str) -> None:
        if self.state.connected or self.state.last_error != why:
            self.state.since = _now()
        self.state.connected = False
        self.state.last_error = why

    async def _pump(self, connection: MqttConnection) -> None:
        # A new session resends everything still in the outbox: rows in flight when the last one
        # died were never acknowledged, so they are still there.
        self._taken = 0
        self._live = False
        self._queue.clear()
        self._held.clear()  # read again with the backlog
        while not connection.closed.done():
            read = await self._next_rows(connection)
            if read is None:
                return
            rows, due = read
            settled, under = await self._check(rows)
            now_us = time.time_ns() // 1000
            if settled.leave:
                await self._lease.cover(max(r.id for r in settled.leave), self.outbox.last_id)
            leave, k = settled.leave, 0
            while k < len(leave):
                row = leave[k]
                if row.release_at is not None and row.release_at > now_us:
                    heapq.heappush(self._held, (row.release_at, row.id))
                    k += 1
                    continue
                await self._window.take()
                if self.outbox.erasures == self._read_at and self._stale(under):
                    # Checked again holding the room (nothing waits between check and send); a
                    # check that fails gives it back.
                    try:
                        settled, under = await self._check(leave[k:])
                    except BaseException:
                        self._window.give()
                        raise
                    leave, k = settled.leave, 0
                    if not leave or (leave[0].release_at or 0) > now_us:
                        self._window.give()
                        continue
                    row = leave[0]
                if connection.closed.done():
                    self._window.give()
                    return
                if self.outbox.erasures != self._read_at:
                    self._window.give()
                    self._read_again(leave[k:], due=due)
                    break
                self._send(connection, row)
                k += 1

    async def _check(self, rows: Sequence[OutboxRow]) -> tuple[Settled, tuple[object, float]]:
        """The send-time check of ``rows`` (again, while what it judges by moved during it: a
        consent withdrawn while it recorded), and what it judged by and when (for ``_stale``;
        its age from its end, so a slow check is not stale at once)."""
        while True:
            judged = self._checked()
            settled = await self._at_send(rows, self._reachable_us, self.may_have_sent)
            self._unconfirmed.difference_update(r.id for r in settled.withheld)
            # Withheld rows left the queue counts as their deletion committed (``SendTime``).
            self.state.withheld_at_send += len(settled.withheld)
            rows = settled.leave
            if not rows or self._checked() == judged or self.outbox.erasures != self._read_at:
                return settled, (judged, elapsed())

    def _stale(self, under: tuple[object, float]) -> bool:
        """Whether rows checked ``under`` (what the check judged by, and when) must be checked
        again before the next leaves: a consent was withdrawn, an objection or restriction
        recorded, or a policy reloaded since (the customer was told that what still waits is
        held back), or the check is older than ``CHECKED_FOR_S`` (hours and validity end)."""
        # Aged on the clock that counts through a suspend (hours may end while the box sleeps).
        return self._checked() != under[0] or elapsed() - under[1] > CHECKED_FOR_S

    def _read_again(self, rows: Sequence[OutboxRow], *, due: bool) -> None:
        """An erasure began after ``rows`` (the unsent rest of a batch, in id order) were read:
        it may have deleted some, so none leaves from memory; they are read from the outbox
        again, held ones (``due``) through the heap, the others with the backlog (``_next_rows``
        drops what its queue holds and reads from the table, seeing the count moved)."""
        if due:
            for row in rows:
                heapq.heappush(self._held, (row.release_at or 0, row.id))
            return
        self._taken = rows[0].id - 1

    async def _next_rows(self, connection: MqttConnection) -> tuple[list[OutboxRow], bool] | None:
        """The next rows to check and send, and whether they are held rows fallen due."""
        while True:
            while not self.outbox.quiet.is_set():  # another may begin as one ends
                await self.outbox.quiet.wait()  # an erasure runs: read what it left
            if self._read_at != self.outbox.erasures:
                # Rows offered before it ended may be what it deleted: read from the outbox.
                self._read_at = self.outbox.erasures
                self._live = False
                self._queue.clear()
            due = self._due()
            if due:
                rows = [r for r in await self.outbox.by_ids(due) if r.id not in self._acks]
                if rows:
                    return rows, True
                continue
            if self._live and self._queue:
                rows = [r for r in self._queue if r.id > self._taken and r.id not in self._acks]
                self._queue.clear()
                if rows:
                    self._taken = rows[-1].id
                    return rows, False
                continue
            if not self._live:
                # Set live before reading: rows committed while we read are offered to the queue,
                # and the id filter above drops those the read already returned.
                self._live = True
                self.state.backlog = True
                after = self._taken
                rows = await self.outbox.pending(
                    self.recipient.name, after=after, limit=self._batch
                )
                rows = [r for r in rows if r.id not in self._acks]
                if len(rows) >= self._batch:
                    self._live = False
                    self._queue.clear()
                else:
                    self.state.backlog = False
                if rows:
                    self._taken = rows[-1].id
                    return rows, False
                continue
            self._wake = asyncio.get_running_loop().create_future()
            waiters: set[asyncio.Future[Any]] = {self._wake, connection.closed}
            # Until the next held row falls due, if any (a timer, not a poll).
            until = (self._held[0][0] - time.time_ns() // 1000) / 1e6 if self._held else None
            self._parked = connection
            try:
                await asyncio.wait(waiters, timeout=until, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._parked = None
            if connection.closed.done():
                return None

    def _due(self) -> list[int]:
        """Ids of held rows whose time has come, in id order."""
        now_us = time.time_ns() // 1000
        due: list[int] = []
        while self._held and self._held[0][0] <= now_us:
            due.append(heapq.heappop(self._held)[1])
        return sorted(due)

    def _published(
        self,
        row_id: int,
        queued: float,
        customer: str,
        size: int,
        error: BaseException | None,
    ) -> None:
        self.state.in_flight -= 1
        if error is not None:
            if isinstance(error, ConnectionLost) and not isinstance(error, NotSent):
                self._unconfirmed.add(row_id)  # written, perhaps: no acknowledgement says
            self._window.give()
            # ConnectionLost: the row stays in the outbox and goes out on the next session.
            if not isinstance(error, ConnectionLost):
                log.error("upstream %s: publish failed: %s", self.recipient.name, error)
            return
        self.state.sent += 1
        self._unconfirmed.discard(row_id)
        if queued:  # rows read back from the database (after a restart) carry no time
            self.delivered.add(time.monotonic() - queued)
        self._acks.add(row_id, customer, size)


def _now() -> float:
    return datetime.now(UTC).timestamp()
