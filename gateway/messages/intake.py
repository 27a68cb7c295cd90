"""Intake: the bounded queue between the device link and the pipeline's writer.

Each device message is judged by the flood guard when it arrives (not when the writer gets to
it: a slow or failing disk queues messages here, and deciding them later in one burst is not the
device's doing), and its topic is resolved to its device once, here; the pipeline reuses that
resolution while the same policy set runs.

When the queue is full, reading from the broker's socket pauses: backpressure, never a drop. The
broker's in-flight window (acks are held until the commit) bounds what arrives meanwhile.
Reading resumes below half the mark.

The queue is a deque and one waiter future of the writer's, not an ``asyncio.Queue``: that one
asks for the running loop at each wait of the writer (a ``getpid`` system call in CPython's check)
and keeps getters, a finished event and a task count nobody here uses.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.messages.clock import elapsed
from gateway.messages.endpoint import Inbound, Session
from gateway.messages.flood import FloodGuard
from policies.engine import Engine
from policies.routes import DeviceRef

__all__ = ["BATCH_BYTES", "QUEUE_BYTES", "Arrival", "Intake"]

# Payload bytes waiting in the queue before reading from the broker pauses, and per batch. The
# queue's length alone let 1,000 in-flight 256 KiB messages (the broker's window) sit here:
# 256 MB. Reading resumes below half of it; one message always fits a batch.
QUEUE_BYTES = 16 * 1024 * 1024
BATCH_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Arrival:
    """A device message as it arrived: the flood guard's verdict then, and its device as the
    policy set ``engine`` resolved it (``engine`` None: not resolved yet)."""

    inbound: Inbound
    flooding: bool = False
    engine: Engine | None = None
    device: DeviceRef | None = None

    def device_under(self, engine: Engine) -> DeviceRef | None:
        """The message's device under ``engine``: resolved again only if the policies changed."""
        if self.engine is not engine:
            self.engine, self.device = engine, engine.device_for(self.inbound.topic)
        return self.device


class Intake:
    """Arrivals in order, batches out; pauses and resumes reading (module text)."""

    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        queue_size: int,
        batch_max: int,
        flood: FloodGuard | None = None,
    ) -> None:
        self._engine = engine
        self._flood = flood
        self._queue: deque[Arrival] = deque()
        # Room for one socket read beyond the mark at which we stop reading; past it a message
        # is refused (asyncio.QueueFull), never dropped in silence.
        self._limit = queue_size + 64
        self._waiter: asyncio.Future[None] | None = None  # the writer's, while the queue is empty
        self._loop: asyncio.AbstractEventLoop | None = None
        self._high = queue_size
        self._low = max(1, queue_size // 2)
        self.batch_max = batch_max
        self._paused: set[Session] = set()
        self._paused_at = 0.0  # clock.elapsed() when reading was paused
        self._queued_bytes = 0  # payload bytes in the queue
        # Messages left out of batches because the device link stepped back from their session
        # (``MqttConnection.step_back``): the broker sends them again.
        self.returned = 0

    def receive(self, message: Inbound) -> None:
        """A message from the device link (a paho callback, on the loop thread)."""
        # Refused before anything is counted: the packet is handled again later, and a flood
        # token taken now would be taken twice for one message.
        if len(self._queue) >= self._limit:
            raise asyncio.QueueFull
        now = message.received or elapsed()
        arrival = Arrival(message)
        flood = self._flood
        if flood is not None:
            device = arrival.device_under(self._engine())
            key = (device.customer, device.device) if device else message.topic
            arrival.flooding = not flood.allow(key, now)
        self._queue.append(arrival)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._queued_bytes += len(message.payload)
        if len(self._queue) >= self._high or self._queued_bytes >= QUEUE_BYTES:
            if not self._paused:
                self._paused_at = elapsed()
            message.connection.pause_reading()
            self._paused.add(message.connection)

    def empty(self) -> bool:
        return not self._queue

    async def take(self) -> list[Arrival]:
        """The next batch: at most ``batch_max`` messages or ``BATCH_BYTES``; empty when all it
        took were QoS 1 messages of a session the device link stepped back from. Those are the
        broker's again (not acknowledged, a persistent session): deciding them too put each in
        the outbox twice, and under load every step back refilled the outbox that had no room
        with them, so it never drained. Each gives its flood token back, since it is judged
        again when the broker sends it anew."""
        queue = self._queue
        while not queue:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        first = queue.popleft()
        batch = [first]
        size = len(first.inbound.payload)
        while len(batch) < self.batch_max and size < BATCH_BYTES and queue:
            batch.append(queue.popleft())
            size += len(batch[-1].inbound.payload)
        self._queued_bytes -= size
        if self._paused and len(queue) <= self._low and self._queued_bytes <= QUEUE_BYTES // 2:
            for connection in self._paused:
                connection.resume_reading()
            self._paused.clear()
            if self._flood is not None:
                # Devices' messages waited in the broker meanwhile and now arrive at once.
                now = elapsed()
                self._flood.credit(now - self._paused_at, now)
        kept = [a for a in batch if not (a.inbound.qos and a.inbound.connection.returned)]
        if len(kept) < len(batch):
            self._hand_back([a for a in batch if a.inbound.qos and a.inbound.connection.returned])
        return kept

    def _hand_back(self, returned: list[Arrival]) -> None:
        self.returned += len(returned)
        if self._flood is None:
            return
        for arrival in returned:
            if not arrival.flooding:
                device = arrival.device_under(self._engine())
                key = (device.customer, device.device) if device else arrival.inbound.topic
                self._flood.refund(key)
