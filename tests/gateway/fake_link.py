"""An in-memory stand-in for ``gateway.messages.mqtt.MqttConnection``: the small interface the pipeline
and the forwarders use (publish futures, manual acks, pause/resume reading, ``closed``), with
the broker's side in the test's hands — which PUBACKs arrive, when the session drops.

No sockets: what these fakes let a test check is the pipeline's and the forwarder's own logic
(what is acknowledged when, in which order rows go out); that they speak MQTT to a real
Mosquitto is what tests/gateway/test_end_to_end.py and tests/faults/ check.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

from gateway.messages.endpoint import ConnectionLost, Endpoint, Inbound, MqttError
from gateway.messages.mqtt import MqttConnection, Sent

__all__ = ["FakeLink", "Published"]


@dataclass(slots=True)
class Published:
    topic: str
    payload: bytes
    qos: int
    future: asyncio.Future[None]


@dataclass(slots=True, eq=False)
class FakeLink:
    """One session. ``refuse`` makes ``open`` fail as a broker that cannot be reached does."""

    endpoint: Endpoint | None = None
    refuse: str | None = None
    published: list[Published] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # mids the gateway acknowledged, in order
    paused: int = 0  # pause_reading calls
    resumed: int = 0  # resume_reading calls
    reading: bool = True
    returned: bool = False  # set by the test: the session was stepped back from (see mqtt.py)
    closed: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    published_event: asyncio.Event = field(default_factory=asyncio.Event)
    session_present: bool = False  # the CONNACK flag: the broker kept this session
    _mid: int = 0

    # -- the interface MqttConnection offers --------------------------------------------------

    async def open(self, timeout: float = 10.0) -> None:
        if self.refuse is not None:
            raise MqttError(self.refuse)

    async def subscribe(self, topic: str, qos: int, timeout: float = 10.0) -> int:
        return qos

    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool = False
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed.done():
            future.set_exception(ConnectionLost("the fake session is closed"))
        self.published.append(Published(topic, payload, qos, future))
        self.published_event.set()
        return future

    def send(self, topic: str, payload: bytes, qos: int, done: Sent, retain: bool = False) -> None:
        """As ``MqttConnection.send``: ``done`` is told once, when the test settles the
        publish's future (``puback`` or ``lose``)."""
        future = self.publish(topic, payload, qos, retain)
        future.add_done_callback(
            lambda f: done(ConnectionLost("cancelled") if f.cancelled() else f.exception())
        )

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)

    def pause_reading(self) -> None:
        self.paused += 1
        self.reading = False

    def resume_reading(self) -> None:
        self.resumed += 1
        self.reading = True

    async def close(self) -> None:
        self.lose("closed")

    # -- the broker's side, driven by the test --------------------------------------------------

    def deliver(self, topic: str, payload: bytes, *, retain: bool = False) -> Inbound:
        """A QoS 1 message as the broker hands it to the gateway (not yet acknowledged);
        ``retain``: a stored retained message sent because the session subscribed."""
        self._mid += 1
        return Inbound(
            topic=topic,
            payload=payload,
            qos=1,
            retain=retain,
            mid=self._mid,
            connection=cast(MqttConnection, self),
            received=time.monotonic(),
        )

    def puback(self, count: int | None = None) -> int:
        """PUBACK the oldest ``count`` unanswered publishes (all when None); how many it did."""
        done = 0
        for sent in self.published:
            if count is not None and done >= count:
                break
            if not sent.future.done():
                sent.future.set_result(None)
                done += 1
        return done

    def lose(self, why: str) -> None:
        """The session drops: unanswered publishes fail as paho's do on a lost connection."""
        if not self.closed.done():
            self.closed.set_result(why)
        for sent in self.published:
            if not sent.future.done():
                sent.future.set_exception(ConnectionLost(why))

    async def wait_published(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.published) < count:
                self.published_event.clear()
                await self.published_event.wait()
