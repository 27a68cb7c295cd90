"""The device side's reading, client by client: decode N QoS 1 PUBLISH packets and answer each
with a PUBACK, in one process, no sockets (a buffer stands in for the socket).

    python -m gateway.bench.codecs [N]

- ``paho``: paho-mqtt's own reader (``_packet_read`` per packet, manual ack, the PUBACKs written
  by ``loop_write`` every 64 messages), MQTT 3.1.1.
- ``loop``: the gateway's client (``gateway/messages/paho_client.py``): paho with its per-packet
  work cut (one read for many packets, the PUBLISH handed over undecoded, PUBACKs joined).
- ``mqtt5``: the ``mqtt5`` package's native (Rust) codec: ``mqtt5.read`` and
  ``PubAckPacket.write``. It speaks MQTT 5 only, so its packets carry the (empty) property
  block 3.1.1 does not have.
- gmqtt is not here: its reader and PUBACK are wired into its asyncio protocol and connection
  objects and cannot be driven from a buffer without rebuilding half of it (README, "Figures").
- ``struct``: framing by hand with ``struct`` in plain Python — the floor for any Python reader.

The other direction, as a forwarder sees it: ``paho-out`` and ``loop-out`` publish N QoS 1
messages and read their N PUBACKs, ``IN_FLIGHT`` at a time (a quiet link) and ``WINDOW`` at a time
(a backlog: paho walks every message in flight on each PUBACK).

Each figure is the median of five rounds, µs per message of CPU (process time).
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, _ConnectionState

from gateway.bench.load import publish_packet
from gateway.messages.paho_client import LoopClient

__all__ = ["main", "measure"]

TOPIC = b"bench/load-0000"
PAYLOAD = b'{"dev":"load-0000","seq":1,"sent_ns":1,"temperature":21.5,"pad":"' + b"x" * 130 + b'"}'


def _v311_stream(n: int) -> bytes:
    return b"".join(publish_packet(TOPIC, i % 65535 + 1, PAYLOAD) for i in range(n))


class _Buffer:
    """A socket that reads from a buffer and swallows writes."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0
        self.written = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._view):
            raise BlockingIOError
        chunk = bytes(self._view[self._at : self._at + size])
        self._at += len(chunk)
        return chunk

    def send(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)

    def close(self) -> None:
        self._view = memoryview(b"")

    def pending(self) -> int:
        return len(self._view) - self._at

    def feed(self, data: bytes) -> None:
        self._view = memoryview(bytes(self._view[self._at :]) + data)
        self._at = 0


def _connected(client: paho.Client, sock: _Buffer) -> None:
    client._sock = sock  # type: ignore[assignment]  # the measured reader, without a network
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    # Packets are queued and written by loop_write, as the gateway's loop does at a turn's end.
    client.on_socket_register_write = lambda *_: None


def run_paho(n: int) -> int:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="codec", protocol=paho.MQTTv311, manual_ack=True
    )
    sock = _Buffer(_v311_stream(n))
    _connected(client, sock)
    acked = 0

    def on_message(c: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        nonlocal acked
        c.ack(message.mid, message.qos)
        acked += 1

    client.on_message = on_message
    while sock.pending():
        client._packet_read()
        if acked % 64 == 0:
            client.loop_write()
    client.loop_write()
    assert sock.written == 4 * n, sock.written
    return acked


def run_loop(n: int) -> int:
    client = LoopClient(
        CallbackAPIVersion.VERSION2, client_id="codec", protocol=paho.MQTTv311, manual_ack=True
    )
    sock = _Buffer(_v311_stream(n))
    _connected(client, sock)
    acked = 0

    def deliver(topic: bytes, payload: bytes, qos: int, retain: bool, mid: int) -> None:
        nonlocal acked
        client.ack(mid, qos)
        acked += 1

    client.deliver = deliver
    while sock.pending() or client.buffered:
        client._packet_read()
        if acked % 64 == 0:
            client.loop_write()
    client.loop_write()
    assert sock.written == 4 * n, sock.written
    return acked


IN_FLIGHT = 4  # a quiet link: a few publishes outstanding
WINDOW = 500  # the forwarder's window, all of it outstanding while a backlog drains


def _publish_rounds(client: paho.Client, n: int, at_once: int) -> int:
    """Publish ``n`` QoS 1 messages ``at_once`` at a time and read their PUBACKs."""
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    sock = _Buffer(b"")
    _connected(client, sock)
    done = 0

    def on_publish(c: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        nonlocal done
        done += 1

    client.on_publish = on_publish
    for _ in range(0, n, at_once):
        mids = [client.publish("cloud/bench", PAYLOAD, qos=1).mid for _ in range(at_once)]
        client.loop_write()
        sock.feed(b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in mids))
        while sock.pending() or (isinstance(client, LoopClient) and client.buffered):
            client._packet_read()
    return done


def _client(cls: type[paho.Client]) -> paho.Client:
    return cls(CallbackAPIVersion.VERSION2, client_id="codec", protocol=paho.MQTTv311)


def run_mqtt5(n: int) -> int:
    import mqtt5  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415 - measured, not a dependency

    data = b"".join(
        mqtt5.PublishPacket(
            topic=TOPIC.decode(),
            payload=PAYLOAD,
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            packet_id=i % 65535 + 1,
        ).write()
        for i in range(n)
    )
    view = memoryview(data)
    out = []
    at = 0
    while at < len(view):
        packet, size = mqtt5.read(view[at:])
        at += size
        assert isinstance(packet, mqtt5.PublishPacket) and packet.packet_id is not None
        out.append(mqtt5.PubAckPacket(packet.packet_id).write())
    written = b"".join(out)
    return len(out) if written else 0


def run_struct(n: int) -> int:
    data = _v311_stream(n)
    at = 0
    acks = []
    unpack = struct.unpack_from
    while at < len(data):
        header = data[at]
        length, shift, i = 0, 0, at + 1
        while True:
            byte = data[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        (tlen,) = unpack("!H", data, i)
        topic = data[i + 2 : i + 2 + tlen].decode()
        (mid,) = unpack("!H", data, i + 2 + tlen)
        payload = data[i + 4 + tlen : i + length]
        assert header & 0x06 == 0x02 and topic and payload
        acks.append(struct.pack("!BBH", 0x40, 2, mid))
        at = i + length
    return len(b"".join(acks)) // 4


CODECS: dict[str, Callable[[int], int]] = {
    "paho": run_paho,
    "loop": run_loop,
    "mqtt5": run_mqtt5,
    "struct": run_struct,
    f"paho-out x{IN_FLIGHT}": lambda n: _publish_rounds(_client(paho.Client), n, IN_FLIGHT),
    f"loop-out x{IN_FLIGHT}": lambda n: _publish_rounds(_client(LoopClient), n, IN_FLIGHT),
    f"paho-out x{WINDOW}": lambda n: _publish_rounds(_client(paho.Client), n, WINDOW),
    f"loop-out x{WINDOW}": lambda n: _publish_rounds(_client(LoopClient), n, WINDOW),
}


def measure(name: str, n: int, rounds: int = 5) -> float:
    """Median µs of CPU per message over ``rounds`` rounds (each decodes and acks ``n``)."""
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        done = CODECS[name](n)
        figures.append((time.process_time() - started) / n * 1e6)
        assert done == n, f"{name} acknowledged {done} of {n}"
    return statistics.median(figures)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 20_000
    for name in CODECS:
        try:
            what = "publish + PUBACK in" if "-out" in name else "decode + PUBACK"
            print(f"{name:<14} {measure(name, n):6.1f} µs/message ({what}, median of 5)")
        except ImportError as exc:
            print(f"{name:<7} not installed ({exc.name}): pip install {exc.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
