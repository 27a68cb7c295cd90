"""An MQTT link's vocabulary (gateway/messages/endpoint.py): an endpoint names its broker the way
an installer reads it and never shows its password; a refused CONNACK says why in plain words; a
received message acknowledges on the session that delivered it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.messages.endpoint import (
    ConnectionLost,
    Endpoint,
    Inbound,
    MqttError,
    Session,
    connack_hint,
)
from gateway.messages.tls import TlsSettings


def test_an_endpoint_names_scheme_user_host_port_and_client_but_never_the_password() -> None:
    plain = Endpoint("10.0.0.5", 1883, "einblick", username="gw", password="s3cret-pw")
    assert plain.describe() == "mqtt://gw@10.0.0.5:1883 as 'einblick'"
    assert "s3cret-pw" not in repr(plain) and "s3cret-pw" not in plain.describe()
    tls = Endpoint("broker.example", 8883, "einblick", tls=TlsSettings())
    assert tls.describe() == "mqtts://broker.example:8883 as 'einblick'"


def test_a_refused_connection_says_why_in_words_an_installer_searches_for() -> None:
    for code in (4, 134):
        assert connack_hint(code, "x") == "bad user name or password"
    for code in (5, 135):
        assert connack_hint(code, "x") == "not authorised"
    assert connack_hint(3, "Server unavailable") == "Server unavailable"


def test_a_lost_connection_is_an_mqtt_error() -> None:
    assert issubclass(ConnectionLost, MqttError)


@dataclass(eq=False)  # hashed by identity, as a real session
class _Session:
    session_present: bool = False
    returned: bool = False
    reading: bool = True
    acks: list[tuple[int, int]] = field(default_factory=list)

    def ack(self, mid: int, qos: int) -> None:
        self.acks.append((mid, qos))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def test_a_message_acknowledges_on_the_session_that_delivered_it() -> None:
    session = _Session()
    delivering: Session = session
    message = Inbound("t/x", b"{}", 1, False, 42, delivering, received=1.0)
    message.ack()
    assert session.acks == [(42, 1)]
    same = Inbound("t/x", b"{}", 1, False, 42, delivering, received=1.0)
    assert hash(message) == hash(same) and message == same
