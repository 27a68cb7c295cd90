"""The baseline: a minimal paho-mqtt forwarder with no policy and no log (subscribe on A at
QoS 1, publish each message to B at QoS 1). Run as its own process so its CPU is measured alone.

    python -m gateway.bench.forwarder A_PORT B_PORT
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

__all__ = ["main"]


def main(argv: list[str]) -> int:
    a_port, b_port = int(argv[0]), int(argv[1])
    upstream = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="baseline-pub")
    upstream.max_inflight_messages_set(1000)
    upstream.max_queued_messages_set(0)
    upstream.connect("127.0.0.1", b_port)
    upstream.loop_start()

    def forward(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        upstream.publish(message.topic, message.payload, qos=1)

    def subscribe(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe("#", qos=1)

    source = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="baseline-sub")
    source.on_message = forward
    source.on_connect = subscribe
    source.connect("127.0.0.1", a_port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    source.loop_start()
    print("ready", flush=True)
    done.wait()
    source.loop_stop()
    upstream.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
