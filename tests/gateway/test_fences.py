"""Fences on a running gateway's own session: one goes round the broker and is taken out of the
message stream once everything before it is committed; a message that merely looks like one is
decided like every other (a real gateway with its managed Mosquitto)."""

from __future__ import annotations

from pathlib import Path

from gateway.messages.endpoint import Inbound
from gateway.operations.fences import FENCE_PREFIX
from tests.gateway.harness import running_gateway


async def test_only_the_awaited_fence_is_taken_out_of_the_message_stream(tmp_path: Path) -> None:
    """A fence goes round the broker on the instance's own session and is acknowledged without
    a decision; a message on a topic that merely looks like one (a device on a broker without
    ACLs can publish anywhere) is decided and recorded like every other."""
    async with running_gateway(tmp_path, {}, []) as harness:
        gateway = harness.gateway
        link = gateway.device_link.connection
        assert link is not None
        guess = Inbound(
            f"{FENCE_PREFIX}/{link.endpoint.client_id}/guessed", b"{}", 1, False, 0, link
        )
        assert gateway.handovers.sees(guess) is False
        received = gateway.running_pipeline.stats.received
        await gateway.handovers.fences.wait(link, "a test's fence")
        assert gateway.running_pipeline.stats.received == received
