"""Publish a fleet of simulated devices to a broker at a fixed rate, on a bounded schedule.

Each device has its own MQTT connection (and optionally its own credentials), as real devices
do. One scheduler thread — the caller's — walks a timetable: device ``i`` sends its ``k``-th
message at ``start + (k + i / n) / rate``, so the fleet's messages are spread evenly instead of
arriving in bursts. A late scheduler catches up rather than skipping, so the offered load stays
what was asked for.

Counts: ``published`` messages handed to MQTT, ``acked`` acknowledged by the broker (PUBACK at
QoS 1), ``failed`` = published - acked once the drain has ended — rejected at once, or never
acknowledged within ``drain_timeout``.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulators.devices import SimulatedDevice
from simulators.link import Link

__all__ = ["Credentials", "PublishCounts", "Publisher"]


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PublishCounts:
    published: int = 0
    acked: int = 0
    failed: int = 0


CredentialsFor = Callable[[int, SimulatedDevice], Credentials | None]


class Publisher:
    """Publishes ``devices`` at ``rate`` messages per second each until a bound is reached.

    Bounds: ``count`` messages per device, ``duration`` seconds, or ``stop()`` (thread- and
    signal-safe). With none of them the run lasts until ``stop()``.
    """

    def __init__(
        self,
        devices: Sequence[SimulatedDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        rate: float = 1.0,
        qos: int = 1,
        count: int | None = None,
        duration: float | None = None,
        credentials: CredentialsFor | None = None,
        client_id_prefix: str = "einblick-sim",
        drain_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 messages per second, got {rate}")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, got {qos}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.devices = list(devices)
        self.host = host
        self.port = port
        self.rate = rate
        self.qos = qos
        self.count = count
        self.duration = duration
        self._credentials = credentials
        self._prefix = f"{client_id_prefix}-{os.getpid()}"
        self._drain_timeout = drain_timeout
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._wall_clock = wall_clock
        self._stop = threading.Event()
        self._links: list[Link] = []
        self._published = 0

    def stop(self) -> None:
        """End the run: no new messages; in-flight ones get the drain timeout to be acked."""
        self._stop.set()

    @property
    def counts(self) -> PublishCounts:
        acked = sum(link.acked for link in self._links)
        return PublishCounts(self._published, acked, self._published - acked)

    def run(self) -> PublishCounts:
        """Connect every device, publish to the schedule, drain, disconnect; return the counts."""
        try:
            self._connect_all()
            self._publish_schedule()
            self._drain()
        finally:
            for link in self._links:
                link.close()
        return self.counts

    def _connect_all(self) -> None:
        for i, device in enumerate(self.devices):
            creds = self._credentials(i, device) if self._credentials else None
            link = Link(
                host=self.host,
                port=self.port,
                client_id=f"{self._prefix}-{i}",
                username=creds.username if creds else None,
                password=creds.password if creds else None,
            )
            link.connect(self._connect_timeout)
            self._links.append(link)

    def _publish_schedule(self) -> None:
        n = len(self.devices)
        if n == 0 or self.count == 0:
            return
        start = self._clock()
        end = None if self.duration is None else start + self.duration
        # (due, device index, message index) — ties break by device, deterministically.
        heap = [(start + (i / n) / self.rate, i, 0) for i in range(n)]
        heapq.heapify(heap)
        while heap and not self._stop.is_set():
            due, i, k = heapq.heappop(heap)
            if end is not None and due >= end:
                break
            delay = due - self._clock()
            if delay > 0 and self._stop.wait(delay):
                break
            topic, payload = self.devices[i].next_message(self._wall_clock())
            self._published += 1
            # A rejected message (not connected) is never acked, so it shows up as failed.
            self._links[i].publish(topic, payload, self.qos)
            if self.count is None or k + 1 < self.count:
                heapq.heappush(heap, (start + (k + 1 + i / n) / self.rate, i, k + 1))

    def _drain(self) -> None:
        deadline = self._clock() + self._drain_timeout
        while self.counts.acked < self._published and self._clock() < deadline:
            time.sleep(0.01)
