"""paho-mqtt on asyncio. With ``paho_client.py`` (paho's client cut to what this loop needs) the
only modules of the gateway that import paho.

(The simulators stand in for third-party devices and have their own client, simulators/link.py.)

One ``MqttConnection`` is one network session. Reconnecting means a new ``MqttConnection``: paho
keeps its own queue of in-flight messages per client object and re-sends it on reconnect, and we
want exactly one source of truth for what still has to go out — our durable outbox. A fresh client
per session also means a manual ack can never reach a later session under a reused packet id.

paho is driven without its thread: its socket callbacks hand the socket to a
``gateway.messages.pump.SocketPump``, which reads and writes it on the event loop and calls
``loop_misc`` for keepalives, the design of paho's own ``examples/loop_asyncio.py`` and of
aiomqtt. That keeps every paho call on the loop thread, with no lock contention on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gateway.messages.clock import elapsed
from gateway.messages.endpoint import (
    ConnectionLost,
    Endpoint,
    Inbound,
    MqttError,
    NotSent,
    SubscriptionRefused,
    connack_hint,
)
from gateway.messages.paho_client import LoopClient
from gateway.messages.pump import SocketPump
from gateway.messages.sockets import Linger
from gateway.messages.tls import TlsError, ssl_context

__all__ = ["MqttConnection", "Sent"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Told how a publish ended: None on PUBACK (or, at QoS 0, once written), else ConnectionLost.
Sent = Callable[[BaseException | None], None]


class MqttConnection:
    """One MQTT session over paho-mqtt, driven by the running asyncio loop."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        on_message: Callable[[Inbound], None] | None = None,
        manual_ack: bool = False,
        clean_session: bool = True,
        max_inflight: int = 100,
    ) -> None:
        self.endpoint = endpoint
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._client = LoopClient(
            CallbackAPIVersion.VERSION2,
            client_id=endpoint.client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            manual_ack=manual_ack,
        )
        # paho's own default of 20 in-flight QoS 1 publishes caps an upstream link at ~20 per
        # round trip; the outbox decides how much is outstanding, so paho should not throttle.
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        if endpoint.username is not None:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls is not None:
            try:
                context = ssl_context(endpoint.tls, endpoint.describe())
            except TlsError as exc:  # the link's callers handle MqttError
                raise MqttError(str(exc)) from exc
            self._client.tls_set_context(context)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message  # paho's own path: QoS 2 only
        self._client.deliver = self._deliver
        self._client.on_publish = self._handle_publish
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_unsubscribe = self._handle_unsubscribe
        self._client.on_socket_close = self._socket_close
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        self._publishes: dict[int, Sent] = {}  # mid → whom to tell of its PUBACK
        self._subscribes: dict[int, asyncio.Future[list[int]]] = {}
        self._unsubscribes: dict[int, asyncio.Future[None]] = {}
        # CONNACK's "session present": the broker kept this client id's persistent session, and
        # with it the subscriptions made in an earlier connection.
        self.session_present = False
        self._pump = SocketPump(self._loop, self._client, self.closed.done, self._teardown)
        self._clean_session = clean_session
        self._lingering = Linger(self._loop)  # after our DISCONNECT: the wait for the EOF
        # True once ``step_back`` closed this persistent session: what it delivered and we have
        # not acknowledged is the broker's again (see ``step_back``).
        self.returned = False
        # Messages the broker delivered on this session: a SUBACK held back by them is late,
        # not lost (``_answer``).
        self.delivered = 0

    # -- public API ---------------------------------------------------------------------------

    async def open(self, timeout: float = 10.0) -> None:
        """Connect and wait for CONNACK. Raises MqttError naming the broker and the reason."""
        endpoint = self.endpoint
        try:
            async with asyncio.timeout(timeout):
                # connect() resolves the name and opens the socket, both blocking; on_socket_open
                # then runs in the executor thread, which is why it hops back to the loop.
                await self._loop.run_in_executor(
                    None, self._client.connect, endpoint.host, endpoint.port, endpoint.keepalive_s
                )
                await asyncio.shield(self._connected)
        except TimeoutError as exc:
            self._teardown("connect timed out")
            raise MqttError(
                f"{endpoint.describe()}: no answer within {timeout:.0f} s "
                "(is the broker running and the port right?)"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            self._teardown(str(exc))
            raise MqttError(f"{endpoint.describe()}: cannot connect: {exc}") from exc
        except MqttError:
            self._teardown("refused")
            raise
        except asyncio.CancelledError:
            # Our caller went away (a forwarder stopped while connecting): a session nobody
            # holds must not go on, keepalives and all, once the CONNACK comes.
            self._teardown("cancelled while connecting")
            raise

    @property
    def is_open(self) -> bool:
        return self._connected.done() and not self._connected.exception() and not self.closed.done()

    async def subscribe(self, topic: str, qos: int, timeout: float = 10.0) -> int:
        """Subscribe and return the granted QoS; a refusal (0x80) raises MqttError."""
        result, mid = self._client.subscribe(topic, qos)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"{self.endpoint.describe()}: subscribe failed: {result}")
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._subscribes[mid] = future
        try:
            granted = await self._answer(future, f"the subscription to {topic!r}", timeout)
        finally:
            self._subscribes.pop(mid, None)
        if not granted or granted[0] >= 0x80:
            raise SubscriptionRefused(
                f"{self.endpoint.describe()}: the broker refused a subscription to {topic!r}"
            )
        return granted[0]

    async def unsubscribe(self, topic: str, timeout: float = 10.0) -> None:
        """Unsubscribe and wait for the UNSUBACK.

        The broker answers packets in order, so every message it queued for this client while
        handling an earlier SUBSCRIBE (the retained messages it sends at once) has been read by
        the time this returns: a fence that needs no sleep."""
        result, mid = self._client.unsubscribe(topic)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"{self.endpoint.describe()}: unsubscribe failed: {result}")
        future: asyncio.Future[None] = self._loop.create_future()
        self._unsubscribes[mid] = future
        try:
            await self._answer(future, f"dropping the subscription to {topic!r}", timeout)
        finally:
            self._unsubscribes.pop(mid, None)

    async def _answer(self, future: asyncio.Future[_T], what: str, timeout: float) -> _T:
        """The broker's answer to a SUBSCRIBE or UNSUBSCRIBE, which it sends behind every message
        it queued for this session before. A persistent session's backlog can hold it back for
        longer than ``timeout`` while we are busy deciding that backlog (the intake stops reading
        when its queue is full), so the wait goes on as long as messages still arrive or our own
        reading is, or was at any time in the window of ``timeout`` just ended, paused; only a
        broker silent for a whole ``timeout`` while we were reading is a failure — an MqttError
        the link's callers handle by reconnecting, never a bare TimeoutError that would end the
        gateway."""
        # What the window about to start is judged by: the messages seen, and whether reading
        # ran from its start and was never paused within it.
        seen, pauses, reading = self.delivered, self._pump.pauses, self._pump.reading
        while True:
            try:
                async with asyncio.timeout(timeout):
                    return await asyncio.shield(future)
            except TimeoutError:
                if self.closed.done():
                    raise ConnectionLost(
                        f"{self.endpoint.describe()}: connection lost ({self.closed.result()})"
                    ) from None
                paused = not reading or self._pump.pauses != pauses or not self._pump.reading
                if self.delivered == seen and not paused:
                    raise MqttError(
                        f"{self.endpoint.describe()}: the broker did not confirm {what} within "
                        f"{timeout:g} s and sent nothing else meanwhile"
                    ) from None
                seen, pauses, reading = self.delivered, self._pump.pauses, self._pump.reading

    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a publish; the future resolves on PUBACK (QoS 1) or once written (QoS 0)."""
        future: asyncio.Future[None] = self._loop.create_future()
        self.send(topic, payload, qos, functools.partial(_settle, future), retain)
        return future

    def send(self, topic: str, payload: bytes, qos: int, done: Sent, retain: bool = False) -> None:
        """Queue a publish; ``done(None)`` runs on PUBACK (QoS 1) or once written (QoS 0),
        ``done(ConnectionLost)`` if the session ends first. Exactly once, on the loop thread,
        possibly before this returns. The forwarder's path: no future and no callback
        scheduling per message, one call when the PUBACK is read."""
        if self.closed.done():
            done(NotSent(f"{self.endpoint.describe()}: not connected"))
            return
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:  # a topic paho refuses (too long, empty): never sent
            done(MqttError(f"{self.endpoint.describe()}: cannot publish to this topic: {exc}"))
            return
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            done(
                NotSent(f"{self.endpoint.describe()}: publish failed: {paho.error_string(info.rc)}")
            )
        elif info.is_published():  # QoS 0 written at once, or a PUBACK that already arrived
            done(None)
        else:
            self._publishes[info.mid] = done

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0 and not self.closed.done():
            self._client.ack(mid, qos)

    def pause_reading(self) -> None:
        self._pump.pause_reading()

    def resume_reading(self) -> None:
        self._pump.resume_reading()

    async def step_back(self) -> None:
        """Close on purpose, leaving a persistent session (``clean_session=False``) with the
        broker: every QoS 1 message it delivered that we have not acknowledged stays queued there
        and comes again on the next connection. ``returned`` then tells whoever still holds such
        a message not to decide it now — that would decide it twice. A session the broker ended
        is not marked: a broker killed with -9 may not have kept what it delivered."""
        if not self.closed.done() and not self._clean_session:
            self.returned = True
        await self.close()

    async def close(self) -> None:
        """Send DISCONNECT and wait (at most 2 s) until the broker has read everything we sent
        and closed its side (``_linger``)."""
        if not self.closed.done():
            self._client.linger = self._linger
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await asyncio.shield(self.closed)
                    # paho hands the socket to _linger in the same call that ended the session
                    if self._lingering.waiting:
                        await asyncio.shield(self._lingering.ended)
        self._client.linger = None  # from here on, paho closes what it still holds at once
        self._teardown("closed by us")
        self._lingering.end()

    # -- paho callbacks (all on the loop thread, except on_socket_open during connect) ----------

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self._connected.done():
            return
        if reason.is_failure:
            code = reason.value
            hint = connack_hint(code, str(reason))
            self._connected.set_exception(
                MqttError(f"{self.endpoint.describe()}: the broker refused the connection: {hint}")
            )
        else:
            self.session_present = bool(getattr(flags, "session_present", False))
            self._connected.set_result(None)

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._teardown(str(reason))

    def _deliver(self, topic: bytes, payload: bytes, qos: int, retain: bool, mid: int) -> None:
        self.delivered += 1
        if self._on_message is None:
            return
        self._on_message(
            Inbound(
                topic=topic.decode("utf-8", "replace"),  # a device's bytes: never raise on them
                payload=payload,
                qos=qos,
                retain=retain,
                mid=mid,
                connection=self,
                received=elapsed(),
            )
        )

    def _handle_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        self._deliver(
            message._topic, bytes(message.payload), message.qos, bool(message.retain), message.mid
        )

    def _handle_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        done = self._publishes.pop(mid, None)
        if done is not None:
            done(None)

    def _handle_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        future = self._subscribes.get(mid)
        if future is not None and not future.done():
            future.set_result([r.value for r in reasons])

    def _handle_unsubscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        future = self._unsubscribes.get(mid)
        if future is not None and not future.done():
            future.set_result(None)

    def _socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._pump.detach(sock)

    # -- teardown ---------------------------------------------------------------------------------

    def _linger(self, sock: socket.socket) -> None:
        """paho ended the session after our DISCONNECT: wait for the broker's EOF
        (``gateway.messages.sockets.Linger``) before the socket is closed."""
        self._pump.detach(sock)
        self._lingering.start(sock)

    def _teardown(self, why: str) -> None:
        # ``closed`` is what everyone waiting on this session watches (the link's supervisor
        # reconnects on it, ``_answer`` ends on it): it is set whatever fails on the way there.
        try:
            self._end_session(why)
        finally:
            if not self.closed.done():
                self.closed.set_result(why)

    def _end_session(self, why: str) -> None:
        sock = self._pump.stop()
        # From paho's on_disconnect paho closes the socket itself, right after; closing it here
        # too is harmless and covers the paths where paho never learns of the end — except
        # after our own DISCONNECT, when paho hands it to _linger instead.
        if sock is not None and (self._client.linger is None or self._client.socket() is not sock):
            with contextlib.suppress(OSError):
                sock.close()
        if not self._connected.done():
            self._connected.set_exception(ConnectionLost(f"{self.endpoint.describe()}: {why}"))
            self._connected.exception()  # retrieved: open() reports it, nobody else waits
        lost = ConnectionLost(f"{self.endpoint.describe()}: connection lost ({why})")
        publishes, self._publishes = self._publishes, {}
        for done in publishes.values():
            try:
                done(lost)
            except Exception:
                # A bug in one sender's bookkeeping: the others are still told, so their rows
                # are sent again on the next session instead of waiting for a PUBACK for ever.
                log.exception(
                    "%s: telling a publish that the connection was lost failed",
                    self.endpoint.describe(),
                )
        for sub in self._subscribes.values():
            if not sub.done():
                sub.set_exception(lost)
        for unsub in self._unsubscribes.values():
            if not unsub.done():
                unsub.set_exception(lost)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # cancelled by its waiter
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
