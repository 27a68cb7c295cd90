"""One MQTT connection for simulated devices: the only module in ``simulators`` importing paho.

paho runs its network loop on its own thread (``loop_start``); callbacks arrive there, so every
counter they touch is guarded by a lock. The simulators are test and benchmark tools that want
many independent device connections, which paho's threaded loop gives simply; the gateway's
own adapter (``gateway.messages.mqtt``) drives paho from asyncio instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from policies.errors import EinblickError

__all__ = ["Link", "LinkError", "MessageHandler"]

MessageHandler = Callable[[str, bytes], None]


class LinkError(EinblickError):
    """The broker could not be reached or refused the connection or subscription."""

    def __init__(self, host: str, port: int, client_id: str, message: str) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        super().__init__(f"MQTT {host}:{port} (client {client_id}): {message}")


class Link:
    """A paho client with blocking connect/subscribe and thread-safe acknowledgement counts."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        on_message: MessageHandler | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self._lock = threading.Lock()
        self._acked = 0
        self._connected = threading.Event()
        self._subscribed: dict[int, threading.Event] = {}
        self._connect_result: ReasonCode | None = None
        self._on_message = on_message
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if username is not None:
            client.username_pw_set(username, password)
        client.max_inflight_messages_set(100)
        client.on_connect = self._handle_connect
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        self._client = client
        self._started = False

    # --- paho callbacks (network thread) ------------------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._connect_result = reason
        self._connected.set()

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._lock:
            self._acked += 1

    def _handle_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        with self._lock:
            done = self._subscribed.setdefault(mid, threading.Event())
        done.set()

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(msg.topic, bytes(msg.payload))

    # --- caller side --------------------------------------------------------------------------

    @property
    def acked(self) -> int:
        """Messages the broker acknowledged (QoS 1: PUBACK; QoS 0: written to the socket)."""
        with self._lock:
            return self._acked

    def connect(self, timeout: float = 10.0) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise LinkError(self.host, self.port, self.client_id, str(exc)) from exc
        self._client.loop_start()
        self._started = True
        if not self._connected.wait(timeout):
            self.close()
            raise LinkError(self.host, self.port, self.client_id, f"no CONNACK in {timeout} s")
        result = self._connect_result
        if result is not None and result.is_failure:
            self.close()
            raise LinkError(self.host, self.port, self.client_id, f"refused: {result}")

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = 10.0) -> None:
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise LinkError(self.host, self.port, self.client_id, f"subscribe failed: {rc}")
        with self._lock:  # the SUBACK may have arrived already; both sides share one Event
            done = self._subscribed.setdefault(mid, threading.Event())
        if not done.wait(timeout):
            raise LinkError(self.host, self.port, self.client_id, f"no SUBACK in {timeout} s")

    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Hand a message to paho; False when paho rejected it at once (not connected)."""
        info = self._client.publish(topic, payload, qos=qos)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self._client.disconnect()
        if self._started:
            self._client.loop_stop()
            self._started = False
