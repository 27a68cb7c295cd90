"""Devices cannot read each other's data, the gateway's namespace, or log in as the gateway."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest

from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.mqtt import MqttConnection
from tests.gateway.harness import running_gateway

TWO_CUSTOMERS = {
    "werk.yaml": """
einblick_policy: 1
customer: werk-nord
name: Werk Nord
devices:
  - id: press-1
    name: Presse 1
    kind: press
    topics: [{pattern: "factory/press-1/telemetry", stream: telemetry}]
  - id: press-2
    name: Presse 2
    kind: press
    topics: [{pattern: "factory/press-2/telemetry", stream: telemetry}]
grants:
  - id: monitoring
    recipient: oven-maker
    purpose: {de: "Überwachung", en: "Monitoring"}
    legal_basis: contract
    devices: "*"
    topic: "presses/{device}"
    fields: {seq: keep}
""",
    "praxis.yaml": """
einblick_policy: 1
customer: praxis-berg
name: Praxis Berg
devices:
  - id: door
    name: Tür
    kind: door
    topics: [{pattern: "praxis/door/events", stream: events}]
grants: []
""",
}
DEVICES = [
    ("werk-nord", "press-1", "Presse 1"),
    ("werk-nord", "press-2", "Presse 2"),
    ("praxis-berg", "door", "Tür"),
]
SNOOP_FILTERS = ["#", "factory/#", "factory/press-2/telemetry", "praxis/#", "$SYS/#", "+/+/+"]


async def test_a_device_reads_nothing_of_other_devices_or_customers(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, TWO_CUSTOMERS, DEVICES) as h:
        seen: list[Inbound] = []
        password = h.passwords[("werk-nord", "press-1")]
        snoop = MqttConnection(
            Endpoint("127.0.0.1", h.port, "snoop", username="werk-nord.press-1", password=password),
            on_message=seen.append,
        )
        await snoop.open()
        for topic in SNOOP_FILTERS:
            # MQTT 3.1.1: the broker grants the subscription but delivers nothing the ACL denies.
            with contextlib.suppress(MqttError):
                await snoop.subscribe(topic, 1)
        neighbour = await h.device("werk-nord", "press-2")
        door = await h.device("praxis-berg", "door")
        await neighbour.publish("factory/press-2/telemetry", b'{"seq": 1, "op": "Anna"}', 1)
        await door.publish("praxis/door/events", b'{"badge": "B-17"}', 1)
        await h.wait_committed(2)
        await h.cloud.wait_for(1)
        # The fence: a round trip on the snoop's own connection (``unsubscribe`` waits for the
        # UNSUBACK). The gateway has both messages, so the broker routed them to every
        # subscriber already, and it answers the snoop in order: anything the ACL let through
        # would have been read before this returns.
        await snoop.unsubscribe("#")
        assert seen == [], [(m.topic, m.payload) for m in seen]
        await snoop.close()
        await neighbour.close()
        await door.close()


async def test_a_device_cannot_publish_as_another_device(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, TWO_CUSTOMERS, DEVICES) as h:
        press = await h.device("werk-nord", "press-1")
        for topic in ("factory/press-2/telemetry", "praxis/door/events", "presses/press-2"):
            await press.publish(topic, b'{"seq": 666}', 1)  # PUBACKed, then dropped by the ACL
        await press.publish("factory/press-1/telemetry", b'{"seq": 1}', 1)
        # The own-topic publish is the fence: Mosquitto handles one client's publishes in
        # order, so the three before it were dropped or had reached the gateway already.
        await h.wait_committed(1)
        await h.cloud.wait_for(1)
        assert h.gateway.pipeline is not None
        assert h.gateway.pipeline.stats.received == 1
        assert [orjson.loads(m.payload) for m in h.cloud.received] == [{"seq": 1}]
        await press.close()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("einblick-gateway", "press-1"),  # the gateway's name with a device's password
        (None, None),  # anonymous
        ("werk-nord.press-1", "wrong"),
        ("werk-nord.press-2", "press-1"),  # a neighbour's name with one's own password
    ],
)
async def test_no_one_logs_in_as_the_gateway_or_as_someone_else(
    tmp_path: Path, username: str | None, password: str | None
) -> None:
    async with running_gateway(tmp_path, TWO_CUSTOMERS, DEVICES) as h:
        if password == "press-1":
            password = h.passwords[("werk-nord", "press-1")]
        intruder = MqttConnection(
            Endpoint("127.0.0.1", h.port, "intruder", username=username, password=password)
        )
        with pytest.raises(MqttError, match=r"refused|not authorised|bad user name"):
            await intruder.open()
        await intruder.close()
