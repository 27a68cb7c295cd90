"""The device link: the gateway's one persistent QoS 1 session on the device broker.

It subscribes to everything (to its own customers' topics in a cluster:
gateway/messages/subscriptions.py), hands each message to the pipeline (acknowledged only after its
commit), reconnects with backoff when the broker drops it, and steps back while the outbox has no
room: the broker keeps the devices' messages meanwhile (QoS 1, persistent session), so a full
outbox is backpressure, never a loss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.backoff import Backoff
from gateway.messages.clock import elapsed
from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.flood import FloodGuard
from gateway.messages.mqtt import MqttConnection
from gateway.messages.outbox import Outbox
from gateway.messages.subscriptions import EVERYTHING, Subscriptions

__all__ = ["DeviceLink", "LinkState", "offline_seconds"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LinkState:
    """Whether the session on the device broker is open, since when (wall clock, seconds), and
    why not: what ``einblick status`` shows as ``device_broker``. One object for the link's
    life, changed in place only by the link (``moved``), so whoever holds it reads it current."""

    connected: bool = False
    since: float = field(default_factory=time.time)
    error: str | None = None

    def moved(self, *, connected: bool, error: str | None) -> None:
        """The session opened (``error`` None) or closed, and why, as of now."""
        self.connected = connected
        self.since = time.time()
        self.error = error


def offline_seconds(database: Path) -> float:
    """How long before this start the gateway last wrote to its database (a commit at least
    every second while messages flow): roughly how long devices' messages have been queuing
    in the broker. 0 for a new database."""
    written = [
        p.stat().st_mtime
        for p in (database, database.with_name(database.name + "-wal"))
        if p.exists()
    ]
    return max(0.0, time.time() - max(written)) if written else 0.0


class DeviceLink:
    def __init__(
        self,
        *,
        endpoint: Callable[[], Endpoint],
        outbox: Outbox,
        flood: FloodGuard,
        receive: Callable[[Inbound], None],
        skip: Callable[[Inbound], bool],
        save: Callable[[], None],
        subscriptions: Subscriptions | None = None,
    ) -> None:
        self.subscriptions = subscriptions or Subscriptions(lambda: list(EVERYTHING))
        self._resubscribe = asyncio.Event()  # set by changed(): the subscription set moved
        self._endpoint = endpoint
        self._outbox = outbox
        self._flood = flood
        self._receive = receive
        self._skip = skip  # a retained replay or the sweep's own echo: acknowledged, not decided
        # The managed broker writes its persistence file: after each connect (so a kill -9 keeps
        # our subscriptions) and after each step back (so it keeps the messages handed back).
        self._save = save
        self.offline = 0.0  # seconds the gateway had been stopped when it started
        self.connection: MqttConnection | None = None
        # What status shows as device_broker.
        self.state = LinkState()

    @property
    def connected(self) -> bool:
        return self.state.connected

    async def run(self) -> None:
        """Hold the session; reconnect; step back when the outbox is full. Runs until cancelled."""
        room = self._outbox
        backoff = Backoff(0.2, 10.0)
        # Since when no messages were taken from the broker: devices' messages queued there
        # meanwhile arrive in one burst, and the flood guard is credited for the gap.
        credited = elapsed() - self.offline  # the gap is credited up to here
        while True:
            if room.full.is_set():
                log.error(
                    "%s: not taking messages from devices; the broker keeps them until upstreams catch up",
                    room.pause_reason() or "the outbox is full",
                )
                # The one reason, as status's paused_because says it: the whole outbox, or a
                # hold recipient's share at its quota.
                why = room.pause_reason() or "the outbox is full"
                self.state.moved(connected=False, error=f"paused: {why}")
                await room.has_room.wait()
                log.warning("the outbox has room again: taking messages from devices")
            link = MqttConnection(
                self._endpoint(),
                on_message=self._message,
                manual_ack=True,
                clean_session=False,
                max_inflight=1000,
            )
            # Before the session opens: a persistent session's queued messages start arriving
            # with the CONNACK, and must meet the credited buckets.
            now = elapsed()
            self._flood.credit(now - credited, now)
            credited = now
            try:
                await link.open()
                await self.subscriptions.apply(link)
            except MqttError as exc:
                self.state.moved(connected=False, error=str(exc))
                delay = backoff.next_delay()
                log.warning("device broker: %s; retrying in %.1f s", exc, delay)
                await link.close()
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self._save()
            self.connection = link
            self.state.moved(connected=True, error=None)
            # Held until the broker drops us or the outbox fills.
            full = room.when_full()
            waiters: set[asyncio.Future[Any]] = {full, link.closed}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                full.cancel()
                # The messages this session delivered that are still waiting in the pipeline go
                # back to the broker, undecided: deciding them after the session ended would
                # acknowledge them to no one, the broker would send them again, and each step
                # back would add their duplicates to the outbox that had no room — under load a
                # loop that never let the outbox drain (the pipeline skips them: ``returned``).
                await link.step_back()
                if link.returned:
                    self._save()
                credited = elapsed()  # a new gap begins
            why = (
                link.closed.result()
                if link.closed.done() and not link.closed.cancelled()
                else "closed"
            )
            self.state.moved(connected=False, error=why)

    def changed(self) -> None:
        """The subscription set may have moved (a policy declared new topics)."""
        self._resubscribe.set()

    async def follow(self) -> None:
        """Apply a changed subscription set on the open session; a closed one applies it at its
        next connect anyway. Runs until cancelled."""
        while True:
            await self._resubscribe.wait()
            self._resubscribe.clear()
            link = self.connection
            if link is None or not self.connected:
                continue
            try:
                await self.subscriptions.apply(link)
            except MqttError as exc:  # the session is gone: the reconnect applies the set
                log.warning("device broker: new subscriptions wait for the reconnect: %s", exc)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    def _message(self, message: Inbound) -> None:
        """A retained replay or the sweep's own echo is acknowledged here (decided once already,
        or never a device's); everything else goes to the pipeline."""
        if self._skip(message):
            message.ack()
            return
        self._receive(message)
