"""The device broker's section: the managed Mosquitto (or an external broker) that devices publish
to, its listeners, the gateway's own user on it, and its resource limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.config.section import Section

__all__ = ["DEVICE_USERNAME", "PACKET_OVERHEAD", "BrokerConfig", "BrokerLimits"]


class BrokerLimits(Section):
    """Mosquitto's resource limits (managed mode), written into mosquitto.conf.

    Mosquitto 2.0 applies the queue and in-flight limits to every client alike; the client that
    needs them large is the gateway's own persistent session, which holds devices' messages while
    the gateway is stopped or its outbox is full. Devices cannot use them to queue for
    themselves: they have no read right (see gateway/devices/broker.py), so nothing is ever queued for a
    device. Reaching a queue limit makes Mosquitto drop further messages for the gateway's session
    after acknowledging them to the device; Einblick counts each such episode ("queue_full" in
    ``einblick status`` and the metrics), so size the limits for the longest outage you plan for.
    """

    # Messages queued for one client above those in flight: about a day of 10 devices at 1 msg/s.
    max_queued_messages: int = Field(default=1_000_000, ge=1000)
    # Bytes queued for one client. Mosquitto keeps its queue in memory: this bounds the backlog's
    # share of RAM on an edge box (a million 500-byte messages fit).
    max_queued_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    # QoS 1 messages sent to one client before its acknowledgements: the gateway acknowledges
    # only after its commit, so this is the writer's batch window.
    max_inflight_messages: int = Field(default=1000, ge=1, le=65535)
    # Largest MQTT packet Mosquitto accepts from anyone (bigger: the client is disconnected,
    # nothing is acknowledged). None: pipeline.max_payload_bytes + PACKET_OVERHEAD, so a body the
    # gateway will not inspect but a little larger still reaches it and is withheld with a
    # logged reason, while the shared queue (max_queued_bytes) holds thousands of maximal
    # messages rather than 32 of 16 MiB. Set it only to accept more than the pipeline inspects.
    max_packet_bytes: int | None = Field(default=None, ge=1024, le=268_435_460)
    # Mosquitto's heap limit, the backstop for what the queue limit does not count (packets being
    # received, retained messages, sessions): over it, a publisher is disconnected without an
    # acknowledgement. 0: no limit. Must leave room above max_queued_bytes (checked in Config,
    # which knows the packet size the pipeline implies).
    memory_limit_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    # How often the gateway clears retained messages on the device broker (gateway/messages/retained.py):
    # retained storage holds at most what devices publish in about this long.
    retained_sweep_s: float = Field(default=1.0, gt=0, le=60)


# An MQTT PUBLISH around its payload: fixed header (5), topic (2 + up to 65,535), packet id (2),
# and room for MQTT 5 properties.
PACKET_OVERHEAD = 64 * 1024 + 1024


DEVICE_USERNAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9-]{0,62}$")


class BrokerConfig(Section):
    mode: Literal["managed", "external"] = "managed"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    # Managed mode: where devices connect from. 127.0.0.1 keeps the demo private; an edge box
    # listens on its LAN address or 0.0.0.0.
    listen: str = "127.0.0.1"
    tls_port: int | None = Field(default=None, ge=1, le=65535)
    # On the TLS listener, devices must present a certificate from the gateway's CA
    # ('einblick device add --cert'); its common name is their broker username.
    require_client_cert: bool = False
    # Count PUBLISHes the ACL denied (a device writing under another device's topic). Mosquitto
    # logs them only at debug level, a few lines per message through the gateway: off by default,
    # for commissioning and audits (wrong passwords and refused certificates are always counted).
    report_denied_publish: bool = False
    mosquitto: Path | None = None  # None: found on PATH or in /usr/sbin
    # Managed mode: the gateway's broker user, and its client id (Mosquitto makes every client
    # id the username). Device usernames are always "<customer>.<device>"; a name without that
    # shape can never be claimed by registering a device.
    gateway_username: str = "einblick-gateway"
    gateway_password_file: Path | None = None  # external mode: the gateway's own credentials
    client_id: str = "einblick-gateway"  # external mode only; managed mode uses gateway_username
    limits: BrokerLimits = BrokerLimits()

    @model_validator(mode="after")
    def _unclaimable(self) -> BrokerConfig:
        if self.mode == "managed" and DEVICE_USERNAME.match(self.gateway_username):
            raise ValueError(
                f"gateway_username {self.gateway_username!r} has the shape of a device username "
                "(<customer>.<device>): a device registered under that name could take over the "
                "gateway's session; choose a name without a dot, e.g. einblick-gateway"
            )
        return self
