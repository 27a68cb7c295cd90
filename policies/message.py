"""What arrives from a device, as the engine sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Message"]


# Not frozen: one is built per arriving message, and a frozen __init__ costs twice a plain one.
# Never changed after it is built; hashes by value as before.
@dataclass(slots=True, unsafe_hash=True)
class Message:
    """One MQTT message from the device-side broker, untouched.

    ``payload`` is the exact bytes the device sent: firmware sends literals a JSON round trip would
    change (``23.20``), so nothing upstream of the engine may parse and re-serialise it.
    """

    topic: str
    payload: bytes
    received_at: datetime  # timezone-aware UTC, stamped by the gateway on receipt
    retain: bool = False
    # Seconds on a clock no one sets (the gateway's monotonic clock) at receipt, if known: rate
    # limits measure intervals by it, untouched by steps of the system clock.
    elapsed: float | None = None

    def spacing(self, now: datetime) -> float:
        """The moment, in seconds, rate limits measure intervals at: ``elapsed`` when the
        gateway gave it (a step of the system clock neither shortens an interval nor makes one
        never end), else ``now``."""
        return now.timestamp() if self.elapsed is None else self.elapsed
