"""Per-device flood control: a compromised or broken device cannot crowd out the others.

Each device has a token bucket (``device_max_rate`` tokens per second, ``device_burst`` deep).
A message that finds the bucket empty is not evaluated against the policy: it is recorded as
withheld with Reason ``flooding``, so the log still accounts for every accepted message
(invariant 3) and a flood costs the gateway a cheap log entry rather than a full decision.

The buckets count arrival at the gateway, not publication by the device. While the gateway takes
no messages (restarted, its broker restarting, paused by a full outbox) the broker queues each
device's messages and then hands them over in one burst; ``credit`` gives every device the tokens
it earned meanwhile, so a device that kept to its rate is not called a flooder for its backlog,
while one that flooded during the gap still is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

__all__ = ["HELD_CREDIT_MAX_S", "FloodGuard"]

# The most a hold's backlog is credited for (a handover, gateway/operations/drain.py): a hold
# kept from an earlier run may date from days ago, and a credit that large switches the guard
# off for the customer's devices. A device's backlog beyond it is withheld as flooding, recorded.
HELD_CREDIT_MAX_S = 900.0


class FloodGuard:
    def __init__(self, rate: float, burst: int, *, max_devices: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._max_devices = max_devices  # bounded: topics of unknown devices are keys too
        self._first_tokens = self.burst  # what a device first seen now starts with
        self._first_until = 0.0  # ... until then; afterwards, a full bucket
        self._first_of: dict[str, tuple[float, float]] = {}  # the same, per customer held
        self.refused = 0

    def credit(self, seconds: float, now: float) -> None:
        """The gateway took no messages for ``seconds``: add what every device earned meanwhile
        on top of a full bucket. Tokens above the burst are not refilled, only spent, so the
        credit covers the backlog and nothing after it. Credits add up, so a gap may be
        credited in parts (each reconnect attempt). A device first seen within the catch-up
        (after a restart every device is) gets the same credit, for at least a minute."""
        extra = self._top_up(seconds, lambda key: True)
        first = self._first_tokens if now < self._first_until else self.burst
        self._first_tokens = first + extra
        self._first_until = max(self._first_until, now + max(60.0, seconds))

    def credit_held(self, customer: str, seconds: float, now: float) -> None:
        """As :meth:`credit`, for a hold's backlog: only ``customer``'s devices (keys
        ``(customer, device)``), whose messages the hold kept, and for at most
        ``HELD_CREDIT_MAX_S``; every other device's bucket stays as it is."""
        seconds = min(max(0.0, seconds), HELD_CREDIT_MAX_S)
        extra = self._top_up(seconds, lambda key: isinstance(key, tuple) and key[:1] == (customer,))
        self._first_of = {c: f for c, f in self._first_of.items() if now < f[1]}  # bounded
        tokens, until = self._first_of.get(customer, (self.burst, now))
        self._first_of[customer] = (tokens + extra, max(until, now + max(60.0, seconds)))

    def _top_up(self, seconds: float, which: Callable[[Hashable], bool]) -> float:
        extra = self.rate * max(0.0, seconds)
        for key, (tokens, last) in self._buckets.items():
            if which(key):
                self._buckets[key] = (max(tokens, self.burst) + extra, last)
        return extra

    def refund(self, key: Hashable) -> None:
        """A message that spent a token went back to the broker undecided (the device link
        stepped back from its session, gateway/messages/device_link.py): it arrives and is judged
        again, so its first arrival costs the device nothing."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets[key] = (bucket[0] + 1.0, bucket[1])

    def allow(self, key: Hashable, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            first = self._first_tokens if now < self._first_until else self.burst
            held = self._first_of.get(key[0]) if isinstance(key, tuple) and key else None
            if held is not None and now < held[1]:
                first = max(first, held[0])
            bucket = (first, now)
        tokens, last = bucket
        if tokens < self.burst:
            tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self.refused += 1
            return False
        if len(self._buckets) >= self._max_devices and key not in self._buckets:
            self._buckets.clear()  # forgetting buckets only ever lets a burst through again
        self._buckets[key] = (tokens - 1.0, now)
        return True
