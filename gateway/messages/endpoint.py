"""An MQTT link's vocabulary: where it connects (and how it names that broker to an installer),
what it delivers, and the errors it raises. Apart from the adapter (gateway/messages/mqtt.py), so
the intake, the replay checks and the configuration side speak of messages, sessions and
endpoints without the paho machinery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.config import RecipientConfig
from gateway.errors import GatewayError
from gateway.messages.tls import TlsSettings

__all__ = [
    "ConnectionLost",
    "Endpoint",
    "Inbound",
    "MqttError",
    "NotSent",
    "Session",
    "SubscriptionRefused",
    "connack_hint",
    "endpoint_for",
]


class MqttError(GatewayError):
    """A broker refused us or could not be reached."""


class ConnectionLost(MqttError):
    """The session ended before the operation completed; nothing about it is known."""


class NotSent(ConnectionLost):
    """A publish refused before it was written (the session had ended, or paho would not take
    it): certainly not delivered."""


class SubscriptionRefused(MqttError):
    """The broker answered a SUBSCRIBE with a refusal (SUBACK 0x80): its ACL or a limit says no,
    and asking again gets the same answer."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or reprs
    tls: TlsSettings | None = None
    keepalive_s: int = 30

    def describe(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port} as {self.client_id!r}"


class Session(Protocol):
    """What a received message may ask of the session that delivered it
    (gateway.messages.mqtt.MqttConnection)."""

    # the broker kept this client's persistent session (CONNACK's "session present")
    session_present: bool
    # closed on purpose with unacknowledged messages left to the broker (``step_back``)
    returned: bool

    def ack(self, mid: int, qos: int) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


# Not frozen: one is built per received message, and a frozen __init__ costs twice a plain one.
# Never changed after it is built; hashable by value as before.
@dataclass(slots=True, unsafe_hash=True)
class Inbound:
    """A message as received; ``ack()`` sends the PUBACK on the session that delivered it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    connection: Session
    received: float = 0.0  # clock.elapsed() when the broker handed it over

    def ack(self) -> None:
        self.connection.ack(self.mid, self.qos)


_CONNACK_HINTS = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
}


def connack_hint(code: int, fallback: str) -> str:
    """A refused CONNACK's reason in the words an installer searches for (MQTT 3.1.1 codes 4 and
    5, their MQTT 5 equivalents 134 and 135); other codes keep paho's own wording."""
    return _CONNACK_HINTS.get(code, fallback)


def endpoint_for(recipient: RecipientConfig, instance: str, password: str | None) -> Endpoint:
    """Where a recipient's forwarder connects, from its configuration."""
    tls = None
    if recipient.uses_tls:
        tls = TlsSettings(
            ca_file=str(recipient.tls.ca_file) if recipient.tls.ca_file else None,
            cert_file=str(recipient.tls.cert_file) if recipient.tls.cert_file else None,
            key_file=str(recipient.tls.key_file) if recipient.tls.key_file else None,
            insecure_skip_verify=recipient.tls.insecure_skip_verify,
        )
    return Endpoint(
        host=recipient.host,
        port=recipient.port,
        client_id=recipient.client_id or f"einblick-{instance}-{recipient.name}",
        username=recipient.username,
        password=password,
        tls=tls,
        keepalive_s=recipient.keepalive_s,
    )
