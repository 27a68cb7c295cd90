"""Per-device flood control: a compromised or broken device cannot crowd out the others.

Each device has a token bucket (``device_max_rate`` tokens per second, ``device_burst`` deep).
A message that finds the bucket empty is not evaluated against the policy: it is recorded as
withheld with Reason ``flooding``, so the log still accounts for every accepted message
(invariant 3) and a flood costs the gateway a cheap log entry rather than a full decision.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["FloodGuard"]


class FloodGuard:
    def __init__(self, rate: float, burst: int, *, max_devices: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._max_devices = max_devices  # bounded: topics of unknown devices are keys too
        self.refused = 0

    def allow(self, key: Hashable, now: float) -> bool:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self.refused += 1
            return False
        if len(self._buckets) >= self._max_devices and key not in self._buckets:
            self._buckets.clear()  # forgetting buckets only ever lets a burst through again
        self._buckets[key] = (tokens - 1.0, now)
        return True
