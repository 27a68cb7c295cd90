"""The baseline: a minimal paho-mqtt forwarder with no policy and no log (subscribe on A at
QoS 1, publish each message to B at QoS 1). Run as its own process so its CPU is measured alone.

    python -m gateway.bench.forwarder A_PORT B_PORT [--session CLIENT_ID]

It says ``ready`` once its subscription on A is confirmed (SUBACK), so whoever started it can
publish at once. ``--session``: a persistent session under that client id (clean session off),
so that messages published while it is stopped queue in the broker for it: how
``einblick bench --instances`` drains the same backlog through it as through the instances.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

__all__ = ["main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.forwarder")
    parser.add_argument("a_port", type=int)
    parser.add_argument("b_port", type=int)
    parser.add_argument("--session", metavar="CLIENT_ID", help="a persistent session on A")
    args = parser.parse_args(argv)
    upstream = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="baseline-pub")
    upstream.max_inflight_messages_set(1000)
    upstream.max_queued_messages_set(0)
    upstream.connect("127.0.0.1", args.b_port)
    upstream.loop_start()

    def forward(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        upstream.publish(message.topic, message.payload, qos=1)

    def subscribe(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe("#", qos=1)

    subscribed = threading.Event()
    source = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=args.session or "baseline-sub",
        clean_session=args.session is None,
    )
    source.on_message = forward
    source.on_connect = subscribe
    source.on_subscribe = lambda *_: subscribed.set()
    source.connect("127.0.0.1", args.a_port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    source.loop_start()
    subscribed.wait()
    print("ready", flush=True)
    done.wait()
    source.loop_stop()
    upstream.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
