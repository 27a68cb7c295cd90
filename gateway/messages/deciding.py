"""The deciding step of the pipeline: one arrived message → its decisions, one per recipient.

Before the policy engine sees a message, the gateway's own limits decide it: a device over its
rate (``gateway.messages.flood``), a payload over ``max_payload_bytes`` or a topic over
``MAX_TOPIC_BYTES`` is withheld with that reason, and a message of a device whose customer's policy is not loaded is withheld as
``policy_not_loaded``, attributed to its customer. The engine promises never to raise; if it
does, the message is withheld as ``internal_error`` with the traceback in the gateway's log.
Every path ends in decisions: default deny, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival
from policies.decision import Decision, Outcome, Reason
from policies.engine import Engine
from policies.message import Message

__all__ = ["MAX_TOPIC_BYTES", "Decider"]

log = logging.getLogger(__name__)

# A device topic longer than this is withheld as too large. MQTT allows 65,535 bytes, and a
# recipient's topic is made from the device's (``{topic}`` in a grant's template) behind the
# recipient's prefix: a device at the limit would make a topic paho refuses to publish, a row
# that could never leave. Real device topics are a few dozen bytes; Sparkplug's are under 200.
MAX_TOPIC_BYTES = 4096


def _withheld(reason: Reason, customer: str | None = None, device: str | None = None) -> Decision:
    return Decision(
        customer=customer, device=device, recipient=None, outcome=Outcome.WITHHELD, reason=reason
    )


class Decider:
    """Decides arrived messages under the gateway's limits and then the policies."""

    def __init__(
        self,
        *,
        max_payload_bytes: int,
        flood: FloodGuard | None = None,
        not_loaded: Callable[[str], tuple[str, str, str] | None] | None = None,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes  # a configuration reload sets it anew
        self._flood = flood
        self._not_loaded = not_loaded

    def decide(
        self, engine: Engine, arrival: Arrival, now: datetime, also: Sequence[datetime | None] = ()
    ) -> list[Decision]:
        """``now``: the gateway's time; ``also``: the other moments grants are judged at while
        the system clock is behind it (``gateway/messages/clock.py``)."""
        inbound, flooding = arrival.inbound, arrival.flooding
        too_large = len(inbound.payload) > self.max_payload_bytes
        topic = inbound.topic
        # At most 4 bytes a character: most topics are judged without encoding them.
        topic_bytes = len(topic.encode()) if len(topic) * 4 > MAX_TOPIC_BYTES else 0
        if flooding or too_large or topic_bytes > MAX_TOPIC_BYTES:
            device = arrival.device_under(engine)
            reason: Reason | None = None
            if flooding and self._flood is not None:
                reason = Reason("flooding", {"limit": f"{self._flood.rate:g}"})
            if reason is None and too_large:
                reason = Reason(
                    "too_large",
                    {"size": str(len(inbound.payload)), "limit": str(self.max_payload_bytes)},
                )
            if reason is None:
                reason = Reason(
                    "too_large", {"topic": str(topic_bytes), "limit": str(MAX_TOPIC_BYTES)}
                )
            if reason is not None:
                return [
                    _withheld(
                        reason,
                        device.customer if device else None,
                        device.device if device else None,
                    )
                ]
        if self._not_loaded is not None and arrival.device_under(engine) is None:
            owner = self._not_loaded(inbound.topic)
            if owner is not None:  # default deny, attributed to its customer and explained
                customer, device_id, stream = owner
                return [
                    Decision(
                        customer=customer,
                        device=device_id,
                        recipient=None,
                        outcome=Outcome.WITHHELD,
                        reason=Reason("policy_not_loaded"),
                        withheld=("$payload",),
                        stream=stream,
                    )
                ]
        message = Message(
            inbound.topic, inbound.payload, now, inbound.retain, inbound.received or None
        )
        try:
            return engine.evaluate(message, now, also=also)
        except Exception as exc:  # the engine promises not to raise; if it does, deny and say so
            log.exception("the policy engine failed on a message from %r; withheld", inbound.topic)
            return [_withheld(Reason("internal_error", {"error": type(exc).__name__}))]
