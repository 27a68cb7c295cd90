"""Fences: proof that every message a session delivered before now is committed.

A handover (gateway/operations/handover.py) must know when an instance has decided the last
message of a customer that reached one of its sessions. The broker delivers to one session in
order, so: subscribe the session to a topic of its own, publish one message there, and when it
comes back every message the broker had queued for the session before it has been handed to the
pipeline; the pipeline's queue is first in, first out, so once it has committed as many messages
as it had received at that moment, all of them are recorded.

Only the fence a caller is waiting for is taken out of the message stream (acknowledged, not
decided): anything else on such a topic, from a device that can publish there on a broker
without ACLs, is decided and recorded like every other message, never acknowledged unseen.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import GatewayError
from gateway.messages.endpoint import MqttError
from gateway.messages.mqtt import MqttConnection
from gateway.messages.pipeline import Pipeline

__all__ = ["FENCE_PREFIX", "FENCE_TIMEOUT_S", "FenceError", "Fences"]

FENCE_PREFIX = "einblick/fence"  # + /<client id>/<random>
FENCE_TIMEOUT_S = 60.0  # a paused pipeline (full outbox) delays a fence, never loses it


class FenceError(GatewayError):
    """A fence did not come back; the message says why it may not have and what to do."""


@dataclass
class Fences:
    pipeline: Callable[[], Pipeline]
    _waiting: dict[str, asyncio.Future[int]] = field(default_factory=dict)

    def taken(self, topic: str) -> bool:
        """True when ``topic`` is a fence being waited for (then it is noted as arrived)."""
        if not self._waiting:
            return False
        waiting = self._waiting.get(topic)
        if waiting is None:
            return False
        if not waiting.done():
            # every message before the fence on its session has been handed to the pipeline
            waiting.set_result(self.pipeline().stats.received)
        return True

    async def wait(self, link: MqttConnection, what: str) -> None:
        """Wait until every message ``link`` delivered before now is committed. The session's
        messages must reach :meth:`taken` (the device link's, or a hold's, message handler)."""
        topic = f"{FENCE_PREFIX}/{link.endpoint.client_id}/{secrets.token_hex(8)}"
        arrived: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[topic] = arrived
        try:
            async with asyncio.timeout(FENCE_TIMEOUT_S):
                await link.subscribe(topic, 1)
                await link.publish(topic, b"", 1)
                received = await arrived
                await link.unsubscribe(topic)
                await self.pipeline().committed_through(received)
        except TimeoutError as exc:
            raise FenceError(
                f"{what}: the fence message on {topic!r} did not come back through the device "
                f"broker within {FENCE_TIMEOUT_S:.0f} s. The gateway's broker user must be "
                f"allowed to publish and subscribe to {FENCE_PREFIX}/#; if it is, the pipeline "
                "is paused (see einblick status). Run the same command again"
            ) from exc
        except MqttError as exc:
            raise FenceError(f"{what}: the device broker: {exc}. Run the command again") from exc
        finally:
            self._waiting.pop(topic, None)
