"""Load generation for benchmarks, and a probe that measures what arrived and how late.

``LoadDevice`` messages are ~200-byte JSON objects carrying ``dev``, ``seq`` (0, 1, 2, ... per
device) and ``sent_ns`` (wall-clock publish time, ns), so a subscriber on the same host measures
end-to-end latency and finds lost and duplicated messages without any other bookkeeping.
``run_load`` offers N msg/s across M devices at QoS 1 through ``Publisher`` and measures with a
``LatencyProbe`` subscribed before the first message.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from simulators.link import Link
from simulators.publisher import PublishCounts, Publisher

__all__ = ["LatencyProbe", "LatencyReport", "LoadDevice", "build_load", "run_load"]


class LoadDevice:
    """A synthetic device for benchmarks; ``sent`` counts the messages it produced."""

    def __init__(self, device_id: str, topic: str, *, size: int = 200) -> None:
        self._device_id = device_id
        self._topic = topic
        self._size = size
        self.sent = 0

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def topic(self) -> str:
        return self._topic

    def next_message(self, t: float) -> tuple[str, bytes]:
        seq = self.sent
        self.sent += 1
        body = {
            "dev": self._device_id,
            "seq": seq,
            "sent_ns": round(t * 1e9),
            "temperature": round(20.0 + 5.0 * math.sin(seq / 10.0), 2),
            "pad": "",
        }
        raw = json.dumps(body, separators=(",", ":"))
        body["pad"] = "x" * max(0, self._size - len(raw))
        return self._topic, json.dumps(body, separators=(",", ":")).encode()


def build_load(devices: int, *, prefix: str, size: int = 200) -> list[LoadDevice]:
    """``devices`` load devices publishing under ``<prefix>/<device id>``."""
    return [
        LoadDevice(f"load-{i:04d}", f"{prefix}/load-{i:04d}", size=size) for i in range(devices)
    ]


@dataclass(frozen=True, slots=True)
class LatencyReport:
    received: int  # every arrival, duplicates included
    unique: int
    lost: int  # expected but never arrived
    duplicates: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyProbe:
    """Subscribes to load messages and records, per (device, seq), when each arrived."""

    def __init__(self, *, host: str, port: int, topic_filter: str, qos: int = 1) -> None:
        self._filter = topic_filter
        self._qos = qos
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._first: dict[tuple[str, int], int] = {}  # (dev, seq) -> latency ns
        self._received = 0
        self._malformed = 0
        self._first_sent_ns: int | None = None  # earliest publish time of any arrival
        self._last_arrival_ns = 0
        self._link = Link(
            host=host,
            port=port,
            client_id=f"einblick-probe-{uuid.uuid4().hex[:12]}",
            on_message=self._on_message,
        )

    def _on_message(self, topic: str, payload: bytes) -> None:
        now = time.time_ns()
        try:
            body = json.loads(payload)
            key = (str(body["dev"]), int(body["seq"]))
            sent = int(body["sent_ns"])
            latency = now - sent
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self._malformed += 1
            return
        with self._arrived:
            self._received += 1
            if key not in self._first:
                self._first[key] = latency
                self._last_arrival_ns = now
                if self._first_sent_ns is None or sent < self._first_sent_ns:
                    self._first_sent_ns = sent
            self._arrived.notify_all()

    def start(self) -> None:
        """Connect and subscribe; returns once the broker confirmed the subscription."""
        self._link.connect()
        self._link.subscribe(self._filter, self._qos)

    def stop(self) -> None:
        self._link.close()

    def __enter__(self) -> LatencyProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def malformed(self) -> int:
        with self._lock:
            return self._malformed

    def span_seconds(self) -> float:
        """From the earliest publish to the last new arrival: the time the load took to get through."""
        with self._lock:
            if self._first_sent_ns is None:
                return 0.0
            return (self._last_arrival_ns - self._first_sent_ns) / 1e9

    def wait_for(self, unique: int, timeout: float) -> bool:
        """Wait until ``unique`` distinct messages arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._first) >= unique, timeout)

    def report(self, expected: Mapping[str, int]) -> LatencyReport:
        """Compare arrivals with ``expected`` (device id -> messages sent, seq 0..n-1)."""
        with self._lock:
            first = dict(self._first)
            received = self._received
        want = {(dev, seq) for dev, n in expected.items() for seq in range(n)}
        latencies = sorted(ns / 1e6 for key, ns in first.items() if key in want)
        return LatencyReport(
            received=received,
            unique=len(first),
            lost=len(want - first.keys()),
            duplicates=received - len(first),
            p50_ms=_percentile(latencies, 50),
            p99_ms=_percentile(latencies, 99),
            max_ms=latencies[-1] if latencies else 0.0,
        )


def run_load(
    *,
    host: str,
    port: int,
    rate: float,
    devices: int,
    duration: float,
    qos: int = 1,
    size: int = 200,
    prefix: str | None = None,
    settle_timeout: float = 10.0,
) -> tuple[PublishCounts, LatencyReport]:
    """Offer ``rate`` msg/s in total across ``devices`` for ``duration`` s and measure it."""
    if devices <= 0:
        raise ValueError(f"devices must be > 0, got {devices}")
    prefix = prefix or f"einblick/load/{uuid.uuid4().hex[:8]}"
    fleet = build_load(devices, prefix=prefix, size=size)
    with LatencyProbe(host=host, port=port, topic_filter=f"{prefix}/#", qos=qos) as probe:
        publisher = Publisher(
            fleet, host=host, port=port, rate=rate / devices, qos=qos, duration=duration
        )
        counts = publisher.run()
        expected = {d.device_id: d.sent for d in fleet}
        probe.wait_for(sum(expected.values()), settle_timeout)
        return counts, probe.report(expected)
