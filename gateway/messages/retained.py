"""Retained messages on the device broker: cleared once the gateway has them, never decided twice.

On the managed broker a retained message serves nobody but the gateway: devices have no read
right (gateway/devices/broker.py), and the gateway's persistent QoS 1 session already receives every
message live. Left alone, retained messages pile up for ever: one device publishing large
retained messages to many topics under its own ``+`` level filled Mosquitto's ``memory_limit``,
every client was disconnected "due to out of memory", and the retained set, reloaded from the
persistence file, did it again after every restart.

Two rules keep them harmless, on MQTT 3.1.1 (where a live message always arrives with retain=0,
so the gateway cannot tell a live retained publish from any other):

- ``RetainedSweeper`` clears them. Every ``every_s`` a helper connection (its own broker user,
  so it never touches the gateway's session) subscribes ``#`` at QoS 0, which makes the broker
  send every retained message at once with retain=1; the UNSUBACK that follows fences the burst;
  then an empty retained message to each topic deletes it (MQTT 3.1.1, 3.3.1.3). Clearing is
  safe once the gateway's session is subscribed: the broker queued each message for that session
  when it arrived, and deleting the retained copy does not touch the queue. Retained storage
  therefore holds at most what devices publish in one interval.
- ``is_replay``: a SUBSCRIBE on a session the broker kept (CONNACK "session present") makes the
  broker send every retained message again, with retain=1, although the session received each
  live already. Those are acknowledged and not decided again. On a new session (first start, or
  a broker that lost its persistence) they are the only copy and are decided as usual.

A cleared topic's empty retained message is itself delivered to the gateway's subscription (at
QoS 0, as it was published). It is not the device's message and must not be recorded as one:
``is_echo`` recognises it by topic for a short while after the sweep sent it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.mqtt import MqttConnection

__all__ = ["RetainedSweeper", "SweepStats", "is_replay"]

log = logging.getLogger(__name__)

# How long an expected echo of our own clear is remembered. The gateway reads its socket within
# milliseconds unless it is paused on a full outbox; an echo that never comes (the gateway's link
# dropped, and QoS 0 is not queued for an offline session) must not hide a device's own empty
# message for long.
ECHO_TTL_S = 60.0
# Topics cleared per sweep; whatever remains is cleared in the next one. Bounds the helper's
# memory and the expected-echo table whatever a device publishes.
MAX_TOPICS_PER_SWEEP = 10_000


def is_replay(message: Inbound) -> bool:
    """A retained message the broker re-sent because a kept session subscribed again."""
    return message.retain and message.connection.session_present


@dataclass(slots=True)
class SweepStats:
    sweeps: int = 0
    cleared: int = 0  # retained messages deleted
    largest: int = 0  # the most found in one sweep: how far retained storage grew
    replays_skipped: int = 0  # re-sent retained messages acknowledged without a second decision
    echoes: int = 0  # our own clears, seen on the gateway's subscription and not recorded
    last_sweep: float | None = None  # time.time()
    last_error: str | None = None


class RetainedSweeper:
    """Clears retained messages on the device broker while the gateway's session is subscribed."""

    def __init__(
        self,
        endpoint: Callable[[], Endpoint],
        *,
        every_s: float,
        subscribed: Callable[[], bool],
    ) -> None:
        self._endpoint = endpoint
        self.every_s = every_s
        self._subscribed = subscribed
        self._link: MqttConnection | None = None
        self._found: dict[str, None] = {}  # topics with a retained message, in arrival order
        self._collecting = False
        self._echoes: dict[str, list[float]] = {}  # topic → monotonic times a clear was sent
        self.stats = SweepStats()

    async def run(self) -> None:
        """Sweep every ``every_s`` until cancelled; a broker that is away is retried next time."""
        try:
            while True:
                await asyncio.sleep(self.every_s)
                if not self._subscribed():
                    # Until the gateway's session holds its subscription a retained message may
                    # be the only copy of what a device sent: never clear it then.
                    continue
                try:
                    await self.sweep()
                except (MqttError, TimeoutError) as exc:
                    self.stats.last_error = str(exc)
                    log.warning("retained messages on the device broker not cleared: %s", exc)
                    await self._close()
        finally:
            await self._close()

    async def sweep(self) -> int:
        """One pass: collect every retained message, delete each; returns how many."""
        link = await self._open()
        self._found.clear()
        self._collecting = True
        try:
            await link.subscribe("#", 0)
            await link.unsubscribe("#")  # the fence: every retained message has been read
        finally:
            self._collecting = False
        topics = list(self._found)[:MAX_TOPICS_PER_SWEEP]
        self._found.clear()
        now = time.monotonic()
        self._forget_echoes(now)
        for topic in topics:
            self._echoes.setdefault(topic, []).append(now)
        # QoS 0: the broker applies it on receipt, and does not queue its copy for a gateway
        # session that is offline (whose echo table would be gone after a restart).
        await asyncio.gather(*(link.publish(topic, b"", 0, retain=True) for topic in topics))
        self.stats.sweeps += 1
        self.stats.cleared += len(topics)
        self.stats.largest = max(self.stats.largest, len(topics))
        self.stats.last_sweep = time.time()
        self.stats.last_error = None
        return len(topics)

    def is_echo(self, message: Inbound) -> bool:
        """``message`` is the gateway's own clear coming back, not something a device sent."""
        if message.payload or message.qos != 0:
            return False
        sent = self._echoes.get(message.topic)
        if not sent:
            return False
        if time.monotonic() - sent[0] > ECHO_TTL_S:
            self._forget_echoes(time.monotonic())
            sent = self._echoes.get(message.topic)
            if not sent:
                return False
        sent.pop(0)
        if not sent:
            del self._echoes[message.topic]
        self.stats.echoes += 1
        return True

    def skip(self, message: Inbound) -> bool:
        """True for a message the gateway acknowledges without deciding: a replay or an echo."""
        if is_replay(message):
            self.stats.replays_skipped += 1
            return True
        return self.is_echo(message)

    def status(self) -> dict[str, object]:
        stats = self.stats
        return {
            "sweep_every_s": self.every_s,
            "sweeps": stats.sweeps,
            "cleared": stats.cleared,
            "largest_sweep": stats.largest,
            "replays_skipped": stats.replays_skipped,
            "echoes": stats.echoes,
            "last_sweep": stats.last_sweep,
            "last_error": stats.last_error,
        }

    # -- internals ------------------------------------------------------------------------------

    def _collect(self, message: Inbound) -> None:
        # Live messages (retain=0) pass by while we are subscribed; only stored ones count, and an
        # empty one is a deletion on its way, not a stored message.
        collect = self._collecting and message.retain and bool(message.payload)
        if collect and len(self._found) < MAX_TOPICS_PER_SWEEP:
            self._found[message.topic] = None

    def _forget_echoes(self, now: float) -> None:
        for topic in [t for t, sent in self._echoes.items() if now - sent[-1] > ECHO_TTL_S]:
            del self._echoes[topic]
        for sent in self._echoes.values():
            while sent and now - sent[0] > ECHO_TTL_S:
                sent.pop(0)

    async def _open(self) -> MqttConnection:
        link = self._link
        if link is not None and link.is_open:
            return link
        await self._close()
        link = MqttConnection(self._endpoint(), on_message=self._collect)
        try:
            await link.open()
        except MqttError:
            await link.close()
            raise
        self._link = link
        return link

    async def _close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()
