"""Retained messages on the device broker (gateway/messages/retained.py): decided once, then cleared."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson

from gateway.app import Gateway
from gateway.config import PACKET_OVERHEAD, Config, load_config
from gateway.errors import ConfigError
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.control import request
from tests.gateway.harness import Harness, running_gateway
from tests.gateway.test_rights import DEVICES, POLICY

ANNA_TOPIC = "owntracks/anna/phone"
BEN_TOPIC = "owntracks/ben/phone"


async def wait_until(condition: object, timeout: float = 15.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def retained_on_broker(h: Harness) -> list[str]:
    """Topics holding a retained message, seen as a fresh subscriber (fenced by UNSUBACK)."""
    user = f"{h.gateway.config.broker.gateway_username}-erasure"
    found: list[str] = []

    def collect(message: Inbound) -> None:
        if message.retain and message.payload:
            found.append(message.topic)

    link = MqttConnection(
        Endpoint(
            "127.0.0.1", h.port, user, username=user, password=h.gateway.devices.gateway_password()
        ),
        on_message=collect,
    )
    await link.open()
    try:
        await link.subscribe("#", 0)
        await link.unsubscribe("#")
    finally:
        await link.close()
    return found


async def restart(h: Harness) -> None:
    """Stop the gateway (and its broker) cleanly and start it again on the same directory."""
    h.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await h.task
    h.gateway = Gateway(load_config(h.gateway.config.source))
    h.task = asyncio.get_running_loop().create_task(h.gateway.run(), name="gateway-restarted")
    await wait_until(lambda: h.gateway.device_state.connected or h.task.done())
    if h.task.done():
        h.task.result()


async def retained_while_withdrawn(h: Harness) -> None:
    """Anna's place published retained while consent to the family map was withdrawn (decided
    and logged as withheld), then the consent given again: the retained copy stays on the broker,
    and any later delivery of it is a replay of a message already decided."""
    socket = h.gateway.config.control_socket
    consent = {"customer": "familie-weber", "grant": "family-map", "by": "Anna Weber"}
    await request(socket, "withdraw", **consent)
    anna = await h.device("familie-weber", "phone-anna")
    await anna.publish(ANNA_TOPIC, orjson.dumps({"place": "A", "batt": 90}), 1, retain=True)
    await anna.close()
    await h.wait_committed(1)
    await request(socket, "give", **consent)


def anna_messages(h: Harness) -> list[dict[str, object]]:
    return [orjson.loads(m.payload) for m in h.cloud.received if m.topic == "family/phone-anna"]


async def test_a_retained_message_is_forwarded_once_across_a_gateway_restart(
    tmp_path: Path,
) -> None:
    # No sweep during the test: the retained message stays on the broker, and the restarted
    # gateway's SUBSCRIBE makes the broker send it again.
    edits = {"broker:\n": "broker:\n  limits:\n    retained_sweep_s: 60\n"}
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        anna = await h.device("familie-weber", "phone-anna")
        await anna.publish(ANNA_TOPIC, orjson.dumps({"place": "A", "batt": 90}), 1, retain=True)
        await h.cloud.wait_for(1)
        await anna.close()
        await restart(h)
        assert await retained_on_broker(h) == [ANNA_TOPIC]  # still there, so it was re-sent
        ben = await h.device("familie-weber", "phone-ben")
        await ben.publish(BEN_TOPIC, orjson.dumps({"place": "B", "batt": 80}), 1)
        # Ben's message comes after the re-sent retained one on the gateway's session.
        await h.cloud.wait_for(2)
        await ben.close()
        assert anna_messages(h) == [{"place": "A", "batt": 90}]
        assert h.gateway.retained.stats.replays_skipped == 1
        assert h.gateway.status().to_json()["retained"]["replays_skipped"] == 1


async def test_the_sweep_clears_retained_messages_and_records_nothing_for_its_own_clears(
    tmp_path: Path,
) -> None:
    edits = {"broker:\n": "broker:\n  limits:\n    retained_sweep_s: 0.2\n"}
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        assert h.gateway.pipeline is not None
        anna = await h.device("familie-weber", "phone-anna")
        await anna.publish(ANNA_TOPIC, orjson.dumps({"place": "A", "batt": 90}), 1, retain=True)
        await h.cloud.wait_for(1)
        stats = h.gateway.retained.stats
        # The clear comes back to the gateway's own subscription as an empty message.
        await wait_until(lambda: stats.cleared == 1 and stats.echoes == 1)
        assert await retained_on_broker(h) == []
        # A device's own empty message is still recorded: only the echo is recognised.
        await anna.publish(ANNA_TOPIC, b"", 1)
        await anna.publish(ANNA_TOPIC, orjson.dumps({"place": "A2", "batt": 89}), 1)
        await h.cloud.wait_for(2)
        await anna.close()
        # Three messages from Anna, three decided: none for the sweep's clear.
        assert h.gateway.pipeline.stats.committed == 3
        assert [m["place"] for m in anna_messages(h)] == ["A", "A2"]
        assert stats.echoes == 1 and stats.replays_skipped == 0


def test_the_device_broker_refuses_packets_the_pipeline_would_never_inspect(tmp_path: Path) -> None:
    default = Config.model_validate({"einblick_config": 1, "source": tmp_path / "einblick.yaml"})
    assert default.broker.limits.max_packet_bytes is None
    assert default.broker_packet_bytes == 256 * 1024 + PACKET_OVERHEAD
    # The shared queue holds over a thousand maximal messages, not 32 of 16 MiB.
    assert default.broker.limits.max_queued_bytes // default.broker_packet_bytes >= 1000
    bigger = Config.model_validate(
        {
            "einblick_config": 1,
            "source": tmp_path / "einblick.yaml",
            "pipeline": {"max_payload_bytes": 1024 * 1024},
            "broker": {"limits": {"max_packet_bytes": 2048}},
        }
    )
    assert bigger.broker_packet_bytes == 1024 * 1024 + PACKET_OVERHEAD  # never below the pipeline
    path = tmp_path / "einblick.yaml"
    # The memory check uses the packet size that is really configured (here 64 MiB packets).
    path.write_text(
        "einblick_config: 1\nbroker:\n  limits:\n    max_packet_bytes: 67108864\n"
        "    max_queued_bytes: 104857600\n    memory_limit_bytes: 268435456\n",
        encoding="utf-8",
    )
    try:
        load_config(path)
    except ConfigError as exc:
        assert "memory_limit_bytes" in str(exc) and "67108864" in str(exc), str(exc)
    else:
        raise AssertionError("a memory limit below 4 packets above the queue was accepted")
    path.write_text(
        "einblick_config: 1\nbroker:\n  limits:\n"
        "    max_queued_bytes: 104857600\n    memory_limit_bytes: 268435456\n",
        encoding="utf-8",
    )
    assert load_config(path).broker.limits.memory_limit_bytes == 268435456


async def test_the_managed_broker_is_written_with_the_pipelines_packet_limit(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES) as h:
        assert h.gateway.broker is not None
        conf = h.gateway.broker.conf_path.read_text(encoding="utf-8")
        assert f"max_packet_size {h.gateway.config.broker_packet_bytes}\n" in conf
        assert h.gateway.config.broker_packet_bytes < 1024 * 1024


async def test_a_retained_message_withheld_under_a_withdrawal_is_not_sent_after_consent_is_given(
    tmp_path: Path,
) -> None:
    # Issue 15: published while consent was withdrawn, the retained copy was forwarded once the
    # consent was given again, and again at every reconnect of the gateway. Decided once: never.
    edits = {"broker:\n": "broker:\n  limits:\n    retained_sweep_s: 60\n"}
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        await retained_while_withdrawn(h)
        for _ in range(2):  # each restart reconnects and subscribes again
            await restart(h)
            assert await retained_on_broker(h) == [ANNA_TOPIC]  # re-sent at the SUBSCRIBE
        ben = await h.device("familie-weber", "phone-ben")
        await ben.publish(BEN_TOPIC, orjson.dumps({"place": "B", "batt": 80}), 1)
        await h.cloud.wait_for(1)  # the fence: Ben's message follows any re-sent one
        await ben.close()
        assert anna_messages(h) == []
        assert h.gateway.retained.stats.replays_skipped == 1
