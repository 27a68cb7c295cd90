"""The simulators' MQTT connection (simulators/link.py) against a real Mosquitto: connect and
subscribe block until the broker answered, a message published reaches a subscriber with its
bytes, the broker's acknowledgements are counted, and every failure is a ``LinkError`` naming
the broker and the client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from gateway.devices.ports import free_port
from simulators.link import Link, LinkError
from tests.simulators.conftest import Broker


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= n, timeout)


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within 10 s"
        time.sleep(0.005)


def test_a_message_reaches_a_subscriber_and_its_acknowledgement_is_counted(
    broker: Broker,
) -> None:
    inbox = Inbox()
    sub = Link(host=broker.host, port=broker.port, client_id="sub", on_message=inbox)
    pub = Link(host=broker.host, port=broker.port, client_id="pub")
    sub.connect()
    pub.connect()
    try:
        sub.subscribe("sensors/#", 1)  # returns once the SUBACK is in: nothing is missed
        payloads = [b'{"n":%d}' % i for i in range(5)] + [b"\x00\xff binary"]
        for payload in payloads:
            assert pub.publish("sensors/a", payload, 1)
        assert inbox.wait_for(len(payloads))
        assert inbox.messages == [("sensors/a", p) for p in payloads]
        _until(lambda: pub.acked == len(payloads))  # one PUBACK per QoS 1 message
        assert sub.acked == 0  # a subscriber published nothing
    finally:
        sub.close()
        pub.close()


def test_a_publish_without_a_connection_is_refused_at_once(broker: Broker) -> None:
    link = Link(host=broker.host, port=broker.port, client_id="never-connected")
    assert link.publish("sensors/a", b"x", 1) is False
    link.close()  # closing a link that never connected is harmless


def test_wrong_credentials_are_a_link_error_naming_the_client(
    password_broker: tuple[Broker, str, str],
) -> None:
    broker, user, password = password_broker
    good = Link(
        host=broker.host, port=broker.port, client_id="ok", username=user, password=password
    )
    good.connect()
    good.close()
    bad = Link(
        host=broker.host, port=broker.port, client_id="dev-7", username=user, password="falsch"
    )
    with pytest.raises(LinkError, match=r"refused") as info:
        bad.connect()
    error = info.value
    assert (error.host, error.port, error.client_id) == (broker.host, broker.port, "dev-7")
    assert str(error).startswith(f"MQTT {broker.host}:{broker.port} (client dev-7): refused")


def test_an_unreachable_broker_is_a_link_error() -> None:
    port = free_port()
    link = Link(host="127.0.0.1", port=port, client_id="lonely")
    with pytest.raises(LinkError, match=f"MQTT 127.0.0.1:{port} \\(client lonely\\)"):
        link.connect(timeout=2)
