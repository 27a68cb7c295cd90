"""paho's client with its per-packet Python work cut to what a loop-driven MQTT 3.1.1 session needs.

Half of the MQTT adapter (``gateway/messages/mqtt.py`` drives it on asyncio; the two are the only
modules of the gateway that import paho). Every call into this client happens on the event loop
thread, so paho's locks guard nothing here, and the gateway speaks MQTT 3.1.1 only, so packets
carry no reason codes or properties to decode. What is overridden, and why:

- **Reading.** paho reads each packet with at least three ``recv`` calls (the command byte, the
  length bytes one at a time, the body). ``_sock_recv`` takes whatever the socket holds, up to
  ``RECV_BYTES``, in one call, and hands paho its packets from that buffer. ``buffered`` says
  whether bytes wait here: epoll no longer sees them, so the reader must ask. A packet that
  lies whole in that buffer, or arrives whole with the read that refills it, is cut out in one
  step (``_packet_read``) instead of paho's state machine, which asks for the command byte and each length byte with a call of its own; a
  packet split across reads, or a length paho would refuse, takes paho's own path.
  ``drained`` says that the last ``recv`` took less than it asked for, so the socket held
  nothing more then: the reader need not ask the kernel (an ioctl) whether more is waiting.
  paho's ``loop_read`` reads on while publishes are in flight, until a read finds nothing: a
  ``recv`` failing with EAGAIN, which its own path then asked once more. After a short read in
  the same ``loop_read`` nothing is asked at all, and a failing one is not asked twice. Bytes
  that arrive meanwhile are left in the socket for the next ``loop_read``: that relies on the
  event loop's readiness being level-triggered (epoll as asyncio and ``PacedSelector`` use it),
  which reports a socket with unread bytes at every wait until they are read.
- **PUBLISH in.** paho decodes into an ``MQTTMessage`` (with a ``threading.Condition``), logs,
  and walks its per-topic callback tree before calling ``on_message``. ``deliver`` receives the
  raw topic, payload, QoS, retain flag and packet id directly. QoS 2 and malformed packets take
  paho's own path (which answers a malformed packet with a protocol error).
- **PUBACK in.** paho builds a ``ReasonCode`` and a ``Properties`` object per PUBACK, takes three
  locks, and then walks every message still in flight looking for one it queued behind the
  in-flight limit: O(in flight) per acknowledgement. Messages are queued only while the limit is
  reached, so the walk runs only when this acknowledgement is the one that made room.
- **PUBLISH out.** paho builds an ``MQTTMessage`` per QoS 1 publish, and with it an
  ``MQTTMessageInfo`` holding a ``threading.Condition`` (for ``wait_for_publish``, which a loop
  never calls), takes two locks and logs. ``publish`` builds the packet and a message whose info
  has no condition (``_LoopInfo``) when the publish can go out at once; a publish paho would queue
  behind the in-flight limit, or any other kind, takes paho's own path.
- **Writing.** packets queued in one turn of the loop go out in one ``send`` (``_packet_write``).
- **A write that fails.** paho closes the socket when a write fails. If the broker died, the
  packets it sent before (PUBLISHes it has acknowledged to their devices) may still be unread in
  the socket, and would be lost with it. So before paho closes it, ``_salvage`` reads and hands
  on the whole packets left in this client's buffer and in the socket: Linux hands out the
  bytes received before a reset, then end of file (tests/gateway/test_paho_client.py). What
  the gateway cannot take stays lost with the socket, as it would have unread: a callback that
  raises (the intake full past its limit) ends the salvage, and so does a bound of
  ``SALVAGE_PACKETS`` (logged). Through TLS the session is broken once a write failed, so there
  the pump reads whatever waits before each write instead (``salvages``;
  ``gateway/messages/pump.py``). Reading before every write cost a plain connection its pacing:
  the pipeline's acknowledgements after each commit read what had arrived during the commit at
  once, a batch of about one message with a commit and an fsync of its own (README, "Figures" →
  "The pacing kept").
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["RECV_BYTES", "Deliver", "LoopClient"]

_pack_h = struct.Struct("!H").pack

# (topic as sent, payload, QoS, retain, packet id) of a received PUBLISH.
Deliver = Callable[[bytes, bytes, int, bool, int], None]

# Bytes taken from the socket per read: a loopback or TCP buffer's worth, a few hundred packets.
RECV_BYTES = 64 * 1024
# Packets read from a connection whose write failed, at most. The broker's in-flight window
# bounds its unacknowledged QoS 1 PUBLISHes (1,000 by default, at most 65,535:
# gateway/config/device_broker.py); QoS 0 and control packets are bounded only by the socket's
# receive buffer. The bound keeps a peer that is somehow still sending from holding the loop.
SALVAGE_PACKETS = 100_000

log = logging.getLogger(__name__)

_PUBLISH = 0x30  # MQTT control packet types (high nibble of the fixed header)
_PUBLISH_QOS1 = _PUBLISH | 0x02
_DISCONNECT = 0xE0
# Bytes joined into one send at most: about what a loopback socket buffer takes at once.
_JOIN_BYTES = 64 * 1024
_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
# What paho passes on_publish for every MQTT 3.1.1 PUBACK: success, no properties. Built once;
# the adapter's on_publish reads neither.
_PUBACK_OK = ReasonCode(PacketTypes.PUBACK)
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]


def _fresh_in_packet() -> Any:
    """paho's state for the next packet to read, as paho resets it after each packet."""
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class _LoopInfo(paho.MQTTMessageInfo):
    """paho's handle on one outgoing publish, without the ``threading.Condition`` it builds for
    ``wait_for_publish``: nothing on the loop thread may block waiting for a PUBACK, and nothing
    here does. Marking it published just sets the flag."""

    __slots__ = ()

    def __init__(self, mid: int) -> None:  # paho's fields, minus the condition
        self.mid = mid
        self._published = False
        self.rc = _SUCCESS
        self._iterpos = 0

    def _set_as_published(self) -> None:
        self._published = True

    def is_published(self) -> bool:
        if self.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:  # as paho's own answers
            raise ValueError("Message is not queued due to ERR_QUEUE_SIZE")
        return self._published

    def wait_for_publish(self, timeout: float | None = None) -> None:
        raise RuntimeError("a publish of the loop-driven client cannot be waited for")


class _LoopMessage(paho.MQTTMessage):
    """An outgoing QoS 1 message as paho keeps it in ``_out_messages``, with a ``_LoopInfo``."""

    __slots__ = ()

    def __init__(self, mid: int, topic: bytes, payload: bytes, retain: bool) -> None:
        self.timestamp = time.monotonic()
        self.state = paho.mqtt_ms_wait_for_puback
        self.dup = False
        self.mid = mid
        self._topic = topic
        self.payload = payload
        self.qos = 1
        self.retain = retain
        self.info = _LoopInfo(mid)
        self.properties = None


class LoopClient(paho.Client):
    """paho's client for one thread and MQTT 3.1.1 (module text); all else is paho's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliver: Deliver | None = None
        # Set by ``MqttConnection.close``: after the DISCONNECT we send, the socket goes here
        # instead of being closed at once (see ``MqttConnection._linger``).
        self.linger: Callable[[socket.socket], None] | None = None
        self._rbuf = b""  # bytes read from the socket and not yet handed to paho
        self._rpos = 0
        self.drained = False  # the last recv emptied the socket (module text)
        # A recv of the running ``loop_read`` emptied the socket: its next packet waits for the
        # next readiness epoll reports (module text). Only inside ``loop_read``: a caller
        # reading packets one by one (``_packet_read``) must get what arrived since.
        self._emptied = False
        self._reading = False
        self._writing = False  # inside ``loop_write``: a failure there salvages (module text)
        self._salvaging = False

    @property
    def buffered(self) -> bool:
        """Bytes of the next packets wait in this client's buffer, or a whole packet whose
        handling raised waits to be handled again (paho keeps it); epoll sees neither."""
        if self._rpos < len(self._rbuf):
            return True
        packet = self._in_packet  # a part-read packet waits for the socket instead
        return (
            bool(packet["command"]) and packet["have_remaining"] == 1 and not packet["to_process"]
        )

    def _refill(self, asked: int) -> bytes:
        """One recv into the (used up) buffer. paho's own raises BlockingIOError for "nothing
        yet" and returns b"" at EOF."""
        buf = super()._sock_recv(asked)
        # TLS hands out one record per recv: a short read says nothing of the records still in
        # the socket, so there the reader keeps asking.
        self.drained = len(buf) < asked and not isinstance(self._sock, ssl.SSLSocket)
        if buf:
            self._rbuf, self._rpos = buf, 0
        self._emptied = self.drained and self._reading
        return buf

    @property
    def salvages(self) -> bool:
        """A write that fails reads the packets the broker sent before paho closes the socket
        (module text); through TLS it cannot, so there the pump reads before it writes."""
        return not isinstance(self._sock, ssl.SSLSocket)

    def loop_write(self) -> MQTTErrorCode:
        self._writing = True
        try:
            return super().loop_write()
        finally:
            self._writing = False

    def _loop_rc_handle(self, rc: MQTTErrorCode) -> MQTTErrorCode:
        if rc and self._salvaging:
            # A write from inside the salvage (paho writes at once when no pump asks for
            # writes) failed too. The salvage goes on, and the failure it started from closes
            # the socket and is reported when it is done. Another salvage here would read the
            # packet being handled again; the failure handed back would end this one.
            return _SUCCESS
        if rc and self._writing and self._sock is not None and self.salvages:
            self._writing = False
            self._salvaging = True
            try:
                self._salvage()
            except BaseException:
                super()._loop_rc_handle(rc)  # the socket is closed all the same
                raise
            finally:
                self._salvaging = False
        return super()._loop_rc_handle(rc)

    def _salvage(self) -> None:
        """Hand on the whole packets left in the buffer and the socket of a lost connection."""
        for _ in range(SALVAGE_PACKETS):
            if self._packet_read() != _SUCCESS:
                return
        log.warning(
            "the connection to %s:%s failed while it still delivered packets; the gateway took"
            " %d of them and closed it with the rest unread: the broker sends again what it"
            " persisted",
            self._host,
            self._port,
            SALVAGE_PACKETS,
        )

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        self._reading = True
        try:
            return super().loop_read(max_packets)
        finally:
            # What this call read says nothing of the socket at the next one.
            self._reading = self._emptied = False

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = self._refill(max(bufsize, RECV_BYTES))
            if not buf:
                return buf
            pos = 0
        chunk = buf[pos : pos + bufsize]
        self._rpos = pos + len(chunk)
        return chunk

    def _packet_read(self) -> MQTTErrorCode:
        """The next packet, in one step when it lies whole in the buffer (module text)."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf) and self._in_packet["command"] == 0:
            if self._emptied:
                # This ``loop_read`` already took all the socket held: asking again would be a
                # recv failing with EAGAIN (paho reads on while packets are in flight). Bytes
                # that came since wait in the socket, and epoll (level-triggered) reports them.
                return MQTTErrorCode.MQTT_ERR_AGAIN
            # Nothing buffered: take what the socket holds first, so that a packet which arrived
            # whole is cut out below too, not read a byte at a time through paho's state machine
            # (most packets at a steady rate: each starts a read of its own).
            try:
                self._refill(RECV_BYTES)
            except BlockingIOError:  # nothing yet: paho's answer, without asking a second time
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except Exception:  # paho's own read meets the same again and answers as ever
                return super()._packet_read()
            buf, pos = self._rbuf, self._rpos
        end = len(buf)
        if self._in_packet["command"] != 0 or end - pos < 2:
            return super()._packet_read()
        # The remaining length: at most 4 bytes of 7 bits, low first (MQTT 3.1.1, 2.2.3).
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= end or shift > 21:  # not all here, or a fifth byte: paho decides (refuses)
                return super()._packet_read()
            byte = buf[i]
            i += 1
            length |= (byte & 127) << shift
            if not byte & 128:
                break
            shift += 7
        if end - i < length:
            return super()._packet_read()  # the packet's end is still in the socket
        self._rpos = i + length
        self._in_packet = {
            "command": buf[pos],
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": length,
            "packet": buf[i : i + length],  # type: ignore[typeddict-item]  # bytes: read only
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket:  # as paho answers a malformed packet: a protocol error
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _fresh_in_packet()
        self._last_bytes_received = time.monotonic()  # paho's keepalive clock (its time_func)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        deliver = self.deliver
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        size = len(packet)
        if deliver is None or qos > 1 or self._protocol == MQTTProtocolVersion.MQTTv5 or size < 2:
            return super()._handle_publish()
        start = 2 + ((packet[0] << 8) | packet[1])
        if start == 2 or start + 2 * qos > size:  # empty topic, or too short: malformed
            return super()._handle_publish()  # raises MalformedPacket, a protocol error
        topic = bytes(packet[2:start])
        mid = 0
        if qos:
            mid = (packet[start] << 8) | packet[start + 1]
            start += 2
        deliver(topic, bytes(packet[start:]), qos, bool(header & 0x01), mid)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return _SUCCESS

    def publish(
        self,
        topic: str,
        payload: paho.PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> paho.MQTTMessageInfo:
        """A QoS 1 publish of bytes that can go out now: queued without paho's per-message
        condition, locks and logging (module text). Anything else: paho's own ``publish``."""
        limit = self._max_inflight_messages
        if (
            qos != 1
            or type(payload) is not bytes
            or properties is not None
            or self._protocol == MQTTProtocolVersion.MQTTv5
            or self._sock is None
            or self._max_queued_messages > 0
            or (limit > 0 and self._inflight_messages >= limit)
        ):
            return super().publish(topic, payload, qos, retain, properties)
        topic_bytes = topic.encode("utf-8")
        if not topic_bytes:
            raise ValueError("Invalid topic.")
        self._raise_for_invalid_topic(topic_bytes)  # wildcards, length: as paho checks
        mid = self._mid_generate()
        messages = self._out_messages
        if mid in messages:  # 65,535 publishes unacknowledged: as paho answers
            info = _LoopInfo(mid)
            info.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
            return info
        message = _LoopMessage(mid, topic_bytes, payload, retain)
        packet = bytearray((_PUBLISH_QOS1 | retain,))
        self._pack_remaining_length(packet, 4 + len(topic_bytes) + len(payload))  # checks size
        packet += _pack_h(len(topic_bytes))
        packet += topic_bytes
        packet += _pack_h(mid)
        packet += payload
        messages[mid] = message
        self._inflight_messages += 1
        message.info.rc = self._packet_queue(_PUBLISH, packet, mid, 1, message.info)
        return message.info

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or self._protocol == MQTTProtocolVersion.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        messages = self._out_messages
        if mid not in messages:
            return _SUCCESS  # a PUBACK for nothing we sent in this session: ignored, as paho does
        # The type as a string: ``X | None`` written out is built (and looked up in typing's
        # cache) at every call, once per PUBACK; a string costs nothing at run time.
        on_publish = cast("paho.CallbackOnPublish_v2 | None", self.on_publish)  # API VERSION2
        if on_publish is not None:
            on_publish(self, self._userdata, mid, _PUBACK_OK, _NO_PROPERTIES)
        message = messages.pop(mid)
        message.info._set_as_published()
        if message.qos > 0:
            self._inflight_messages -= 1
            # Messages wait in paho's queue only while in flight == the limit: this PUBACK made
            # the first room, so one of them may go now. Otherwise there is none to look for.
            limit = self._max_inflight_messages
            if limit > 0 and self._inflight_messages == limit - 1:
                return self._update_inflight()
        return _SUCCESS

    def _sock_close(self) -> None:
        sock = self._sock
        if self.linger is None or not isinstance(sock, socket.socket):
            super()._sock_close()
            return
        self._sock = None
        self.linger(sock)

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        """paho's own PUBLISH path (QoS 2, or no ``deliver``): straight to ``on_message``,
        without its locks and its walk of per-topic callbacks (never used here). An exception
        from the callback propagates, as paho's does with ``suppress_exceptions`` off."""
        on_message = self.on_message
        if on_message is not None:
            on_message(self, self._userdata, message)

    def _packet_write(self) -> MQTTErrorCode:
        """Write the packets queued in this turn of the loop in one ``send``, not one each.

        A batch of 100 committed messages queues 100 PUBACKs of 4 bytes; paho sends each with its
        own system call. The leading run of packets that need nothing done once written (all but
        a QoS 0 PUBLISH, whose on_publish fires then, and a DISCONNECT) goes out joined; paho's
        own loop then writes whatever is left (a packet the socket took only part of, or one that
        needs its completion handled), exactly as before."""
        out = self._out_packet
        if len(out) > 1:
            run: list[Any] = []
            size = 0
            for packet in out:
                command = packet["command"] & 0xF0
                if command == _DISCONNECT or (command == _PUBLISH and packet["qos"] == 0):
                    break
                if size + packet["to_process"] > _JOIN_BYTES and run:
                    break  # large publishes: no copying of megabytes the socket cannot take
                run.append(packet)
                size += packet["to_process"]
            if len(run) > 1:
                try:
                    written = self._sock_send(b"".join(p["packet"][p["pos"] :] for p in run))
                except (AttributeError, ValueError):  # no socket: as paho's own loop answers
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
                except BlockingIOError:
                    return MQTTErrorCode.MQTT_ERR_AGAIN
                except OSError:
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
                for packet in run:  # account for what the socket took, packet by packet
                    step = min(written, packet["to_process"])
                    packet["pos"] += step
                    packet["to_process"] -= step
                    written -= step
                    if packet["to_process"]:
                        break  # the socket took part of it: paho's loop goes on from there
                    out.popleft()
        return super()._packet_write()
