"""paho's client cut to a loop-driven MQTT 3.1.1 session: decoding tables, and a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import ssl
import struct
import sys
import termios
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.exception import MalformedPacket

from gateway.messages import paho_client
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.messages.paho_client import RECV_BYTES, LoopClient
from tests.conftest import BrokerFactory


def _client() -> tuple[LoopClient, list[tuple[bytes, bytes, int, bool, int]]]:
    client = LoopClient(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    got: list[tuple[bytes, bytes, int, bool, int]] = []
    client.deliver = lambda *fields: got.append(fields)
    return client, got


def _publish(client: LoopClient, header: int, body: bytes) -> None:
    client._in_packet["command"] = header
    client._in_packet["packet"] = body


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        (0x30, b"\x00\x03a/b{}", (b"a/b", b"{}", 0, False, 0)),  # QoS 0: no packet id
        (0x31, b"\x00\x01tON", (b"t", b"ON", 0, True, 0)),  # retain flag
        (0x32, b"\x00\x01t\x01\x02x", (b"t", b"x", 1, False, 258)),  # QoS 1, id 0x0102
        (0x3A, b"\x00\x01t\x00\x07", (b"t", b"", 1, False, 7)),  # DUP set, empty payload
        (0x32, b"\x00\x02\xff\xfe\x00\x01p", (b"\xff\xfe", b"p", 1, False, 1)),  # bad UTF-8
    ],
)
def test_a_publish_is_handed_over_as_sent(
    header: int, body: bytes, expected: tuple[bytes, bytes, int, bool, int]
) -> None:
    client, got = _client()
    _publish(client, header, body)
    assert client._handle_publish() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [expected]


@pytest.mark.parametrize(
    "body",
    [
        b"\x00",  # no room for the topic length
        b"\x00\x00\x00\x01x",  # empty topic (not allowed in MQTT 3.1.1)
        b"\x00\x05ab",  # topic longer than the packet
        b"\x00\x01t\x01",  # QoS 1 without a whole packet id
    ],
)
def test_a_malformed_publish_is_a_protocol_error_and_delivers_nothing(body: bytes) -> None:
    client, got = _client()
    _publish(client, 0x32, body)
    with pytest.raises(MalformedPacket):
        client._handle_publish()
    assert got == []


def _queued(cls: type[paho.Client], topic: str, payload: bytes, retain: bool) -> bytes:
    """The bytes ``cls.publish`` queues for a QoS 1 publish on a connected session (socket
    stood in for: only the queue is read)."""
    client = cls(CallbackAPIVersion.VERSION2, client_id="t", protocol=paho.MQTTv311)
    client._sock = socket.socket()  # not connected: nothing is written, _packet_queue only
    client.on_socket_register_write = lambda *_: None
    try:
        info = client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == paho.MQTTErrorCode.MQTT_ERR_SUCCESS and info.mid == 1
        assert not info.is_published()
        assert client._inflight_messages == 1 and list(client._out_messages) == [1]
        return bytes(client._out_packet[-1]["packet"])
    finally:
        client._sock.close()


@pytest.mark.parametrize(
    ("topic", "payload", "retain"),
    [
        ("cloud/a", b"{}", False),
        ("cloud/a", b"", True),  # empty payload, retained
        ("k/\u00fc/t", b"x" * 200, False),  # UTF-8 topic; remaining length in two bytes
        ("t", b"y" * 20_000, False),  # three bytes of remaining length
    ],
)
def test_a_qos1_publish_queues_the_bytes_paho_would(
    topic: str, payload: bytes, retain: bool
) -> None:
    assert _queued(LoopClient, topic, payload, retain) == _queued(
        paho.Client, topic, payload, retain
    )


def test_a_qos1_publish_builds_no_threading_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    """paho builds one per publish (MQTTMessageInfo, for wait_for_publish): ~3 µs each."""
    built: list[object] = []
    condition = threading.Condition

    def counting(*args: object) -> threading.Condition:
        built.append(args)
        return condition()

    monkeypatch.setattr(threading, "Condition", counting)
    _queued(LoopClient, "cloud/a", b"{}", False)
    assert built == []
    _queued(paho.Client, "cloud/a", b"{}", False)  # the check sees paho's own
    assert len(built) == 1


def test_a_publish_with_a_wildcard_is_refused_as_paho_refuses_it() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        _queued(LoopClient, "cloud/#", b"{}", False)


def _waiting(sock: socket.socket) -> int:
    """Bytes waiting to be read in the socket."""
    found = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(found, sys.byteorder, signed=True)


def endpoint(port: int, client_id: str) -> Endpoint:
    return Endpoint("127.0.0.1", port, client_id)


async def test_publishes_beyond_the_in_flight_limit_go_out_as_pubacks_make_room(
    brokers: BrokerFactory,
) -> None:
    """paho queues what exceeds max_inflight; the PUBACK that makes room must send the next."""
    broker = await brokers()
    pub = MqttConnection(endpoint(broker.settings.port, "pub"), max_inflight=1)
    await pub.open()
    futures = [pub.publish(f"t/{i}", b"x", 1) for i in range(60)]
    async with asyncio.timeout(10):
        await asyncio.gather(*futures)
    assert pub._client._inflight_messages == 0
    assert not pub._client._out_messages
    await pub.close()


async def test_a_burst_is_read_with_few_system_calls_and_arrives_whole_and_in_order(
    brokers: BrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = await brokers()
    got: asyncio.Queue[Inbound] = asyncio.Queue()
    sub = MqttConnection(
        endpoint(broker.settings.port, "sub"), on_message=got.put_nowait, manual_ack=True
    )
    pub = MqttConnection(endpoint(broker.settings.port, "pub"), max_inflight=1000)
    await sub.open()
    await pub.open()
    await sub.subscribe("t/#", 1)
    recvs: list[int] = []
    recv = paho.Client._sock_recv

    def counting(self: paho.Client, bufsize: int) -> bytes:
        data = recv(self, bufsize)
        if self is sub._client:
            recvs.append(len(data))
        return data

    monkeypatch.setattr(paho.Client, "_sock_recv", counting)
    count = 600  # more than one read takes in one turn (_READ_BURST)
    sub.pause_reading()  # the whole burst waits in the socket, then comes in with one recv
    async with asyncio.timeout(20):
        await asyncio.gather(*(pub.publish(f"t/{i}", f"m{i}".encode(), 1) for i in range(count)))
        sub.resume_reading()
        received = [await got.get() for _ in range(count)]
    assert [m.payload for m in received] == [f"m{i}".encode() for i in range(count)]
    assert [m.topic for m in received] == [f"t/{i}" for i in range(count)]
    assert len({m.mid for m in received}) == count
    # paho alone reads each packet with three recv calls or more: 1,800 here.
    assert len(recvs) < count // 4, len(recvs)
    for m in received:
        m.ack()
    await sub.close()
    await pub.close()


async def test_packets_read_ahead_before_a_pause_are_delivered_after_resume(
    brokers: BrokerFactory,
) -> None:
    """Bytes the client read ahead are invisible to epoll: pausing after the first message and
    resuming later must still deliver the rest, with no new data arriving on the socket."""
    broker = await brokers()
    got: list[Inbound] = []
    read_ahead: list[bool] = []
    resumed = asyncio.Event()
    done = asyncio.Event()
    count = 50
    sub: MqttConnection

    def on_message(message: Inbound) -> None:
        got.append(message)
        if len(got) == 1:  # backpressure, as the pipeline does when its queue is full
            sub.pause_reading()
            read_ahead.append(sub._client.buffered)
            asyncio.get_running_loop().call_later(0.2, resume)
        if len(got) == count:
            done.set()

    def resume() -> None:
        resumed.set()
        sub.resume_reading()

    sub = MqttConnection(endpoint(broker.settings.port, "sub"), on_message=on_message)
    pub = MqttConnection(endpoint(broker.settings.port, "pub"), max_inflight=100)
    await sub.open()
    await pub.open()
    await sub.subscribe("t/#", 0)
    sub.pause_reading()  # the whole burst waits in the socket, then comes in with one recv
    async with asyncio.timeout(10):
        await asyncio.gather(*(pub.publish("t/x", f"{i}".encode(), 1) for i in range(count)))
        # Every packet in the socket (header, length, topic length, "t/x", body) before reading:
        # then nothing more arrives after the first read, and epoll has nothing to report.
        assert sub._pump.sock is not None
        whole = sum(2 + 2 + 3 + len(f"{i}") for i in range(count))
        while _waiting(sub._pump.sock) < whole:
            await asyncio.sleep(0.01)
        sub.resume_reading()
        await resumed.wait()
        await done.wait()
    assert [m.payload for m in got] == [f"{i}".encode() for i in range(count)]
    assert read_ahead == [True]  # the case this is about: the rest was in the client's buffer
    await sub.close()
    await pub.close()


def _publish_bytes(topic: bytes, payload: bytes, mid: int) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + payload
    length, rest = bytearray(), len(body)
    while True:
        length.append((rest & 127) | (128 if rest > 127 else 0))
        rest >>= 7
        if not rest:
            return bytes((0x32, *length)) + body


def _reading() -> tuple[LoopClient, list[tuple[bytes, bytes, int, bool, int]], socket.socket]:
    client, got = _client()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    return client, got, theirs


def test_whole_packets_in_the_buffer_are_cut_out_without_pahos_state_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, got, theirs = _reading()
    slow: list[int] = []
    packet_read = paho.Client._packet_read

    def counting(self: paho.Client) -> paho.MQTTErrorCode:
        slow.append(1)
        return packet_read(self)

    monkeypatch.setattr(paho.Client, "_packet_read", counting)
    sent = [(b"a/b", b"{}", 1), (b"t", b"x" * 300, 2), (b"k", b"", 3)]  # 300: a 2-byte length
    theirs.sendall(b"".join(_publish_bytes(*one) for one in sent))
    for _ in sent:
        assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(t, p, 1, False, mid) for t, p, mid in sent]
    assert slow == []  # the first read fills the buffer; no packet goes through paho's machine
    assert not client.buffered and client._in_packet["command"] == 0
    theirs.close()
    client._sock.close()


def test_a_packet_split_across_reads_is_finished_by_pahos_path() -> None:
    client, got, theirs = _reading()
    whole = _publish_bytes(b"t", b"y" * 50, 9)
    theirs.sendall(_publish_bytes(b"a", b"1", 1) + whole[:20])
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_AGAIN  # the rest not here yet
    theirs.sendall(whole[20:])
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(b"a", b"1", 1, False, 1), (b"t", b"y" * 50, 1, False, 9)]
    theirs.close()
    client._sock.close()


def test_a_remaining_length_of_five_bytes_is_a_protocol_error_and_delivers_nothing() -> None:
    client, got, theirs = _reading()
    theirs.sendall(_publish_bytes(b"a", b"1", 1) + b"\x32\xff\xff\xff\xff\x01" + b"x" * 64)
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert got == [(b"a", b"1", 1, False, 1)]
    theirs.close()
    client._sock.close()


def test_a_malformed_packet_in_the_buffer_is_a_protocol_error() -> None:
    client, got, theirs = _reading()
    theirs.sendall(_publish_bytes(b"a", b"1", 1) + b"\x32\x03\x00\x05a")  # topic past the end
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert got == [(b"a", b"1", 1, False, 1)]
    theirs.close()
    client._sock.close()


def test_a_recv_shorter_than_asked_marks_the_socket_drained() -> None:
    client, got, theirs = _reading()
    theirs.sendall(_publish_bytes(b"a", b"1", 1) * 2)
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client.drained and client.buffered  # all of it in one recv; the second packet here
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    theirs.setblocking(False)
    assert theirs.send(b"z" * (2 * RECV_BYTES)) > RECV_BYTES  # more than one recv takes
    client._sock_recv(1)
    assert not client.drained  # a full read: more may wait, the reader must ask
    assert len(got) == 2
    theirs.close()
    client._sock.close()


def _counting_recvs(monkeypatch: pytest.MonkeyPatch, client: LoopClient) -> list[int]:
    """Sizes returned by each recv the client makes (-1: it failed with EAGAIN)."""
    recvs: list[int] = []
    recv = paho.Client._sock_recv

    def counting(self: paho.Client, bufsize: int) -> bytes:
        try:
            data = recv(self, bufsize)
        except BlockingIOError:
            if self is client:
                recvs.append(-1)
            raise
        if self is client:
            recvs.append(len(data))
        return data

    monkeypatch.setattr(paho.Client, "_sock_recv", counting)
    return recvs


def test_a_read_with_publishes_in_flight_asks_the_socket_nothing_after_a_short_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho's loop_read reads on while publishes are in flight (one PUBACK of two here): after
    the read that emptied the socket, no recv is made that could only fail with EAGAIN."""
    client, got, theirs = _reading()
    recvs = _counting_recvs(monkeypatch, client)
    client._out_messages = {1: None, 2: None}  # type: ignore[dict-item]  # only counted
    theirs.sendall(_publish_bytes(b"a", b"1", 7))
    assert client.loop_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(b"a", b"1", 1, False, 7)]
    assert recvs == [len(_publish_bytes(b"a", b"1", 7))]  # the one read, no failing one
    # Bytes that arrive later are read by the next loop_read (epoll reports them): none waits.
    theirs.sendall(_publish_bytes(b"b", b"2", 8))
    assert client.loop_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got[-1] == (b"b", b"2", 1, False, 8)
    theirs.close()
    client._sock.close()


def test_an_empty_socket_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    client, got, theirs = _reading()
    recvs = _counting_recvs(monkeypatch, client)
    assert client.loop_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS  # nothing yet: as paho
    assert recvs == [-1] and got == []
    theirs.sendall(_publish_bytes(b"a", b"1", 7))
    assert client.loop_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(b"a", b"1", 1, False, 7)]
    theirs.close()
    client._sock.close()


def test_packets_read_one_by_one_outside_loop_read_get_what_arrived_since() -> None:
    """The 'socket emptied' note belongs to the running loop_read: a caller reading packets one
    at a time (the codec benchmark) gets the bytes that came after a short read."""
    client, got, theirs = _reading()
    theirs.sendall(_publish_bytes(b"a", b"1", 7))
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS  # a short read
    theirs.sendall(_publish_bytes(b"b", b"2", 8))
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(b"a", b"1", 1, False, 7), (b"b", b"2", 1, False, 8)]
    theirs.close()
    client._sock.close()


def _dying_broker() -> tuple[LoopClient, list[tuple[bytes, bytes, int, bool, int]], socket.socket]:
    """A client on a real TCP connection, and the broker's end of it."""
    client, got = _client()
    with socket.create_server(("127.0.0.1", 0)) as server:
        ours = socket.create_connection(server.getsockname())
        theirs, _ = server.accept()
    ours.setblocking(False)
    client._sock = ours
    client.on_socket_register_write = lambda *_: None  # the pump's flush is the test's call
    return client, got, theirs


def _reset(client: LoopClient, theirs: socket.socket) -> None:
    """The broker dies (kill -9 with our PUBACKs unread: a reset); returns once it arrived."""
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()
    deadline = time.monotonic() + 5
    while client._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != _TCP_CLOSE:
        assert time.monotonic() < deadline, "the reset never arrived"
        time.sleep(0.001)


_TCP_CLOSE = 7  # tcpi_state of a connection reset (include/net/tcp_states.h)


def test_a_write_that_fails_hands_on_what_the_dead_broker_sent_before_the_socket_closes() -> None:
    """The broker acknowledged these PUBLISHes to their devices before it died: paho would close
    the socket with the write's failure and them unread. Packets already in the client's buffer
    and those still in the socket are handed on, in order, and the connection is closed once."""
    client, got, theirs = _dying_broker()
    closed: list[object] = []
    client.on_disconnect = lambda *args: closed.append(args)
    theirs.sendall(b"".join(_publish_bytes(b"a", b"%d" % n, n) for n in (1, 2, 3)))
    deadline = time.monotonic() + 5
    while not got:  # the first packet; the next two wait in the client's buffer
        assert time.monotonic() < deadline, "the broker's packets never arrived"
        client._packet_read()
    assert client.buffered
    theirs.sendall(b"".join(_publish_bytes(b"a", b"%d" % n, n) for n in (4, 5)))
    _reset(client, theirs)
    client.ack(1, 1)  # the pipeline acknowledges what it committed: the write fails
    assert client.loop_write() == paho.MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert got == [(b"a", b"%d" % n, 1, False, n) for n in (1, 2, 3, 4, 5)]
    assert client._sock is None and len(closed) == 1


def test_a_packet_whose_handling_raised_counts_as_buffered_until_handled() -> None:
    """The intake refusing the last packet of a read (QueueFull): paho keeps it to hand over
    again, and the pump must read it again without waiting for the socket, which is empty."""
    client, got, theirs = _dying_broker()
    refusals = [asyncio.QueueFull()]

    def refusing_once(*fields: tuple[bytes, bytes, int, bool, int]) -> None:
        if refusals:
            raise refusals.pop()
        got.append(fields)  # type: ignore[arg-type]

    client.deliver = refusing_once  # type: ignore[assignment]
    theirs.sendall(_publish_bytes(b"a", b"1", 1))
    deadline = time.monotonic() + 5
    while refusals:  # until the packet arrived and was refused
        assert time.monotonic() < deadline, "the broker's packet never arrived"
        with contextlib.suppress(asyncio.QueueFull):
            client._packet_read()
    assert client.buffered and got == []
    assert client._packet_read() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [(b"a", b"1", 1, False, 1)] and not client.buffered
    theirs.sendall(_publish_bytes(b"a", b"2", 2)[:3])  # a packet's first bytes only
    deadline = time.monotonic() + 5
    while client._in_packet["command"] == 0:
        assert time.monotonic() < deadline, "the broker's bytes never arrived"
        client._packet_read()
    assert not client.buffered  # part of a packet: the socket will say when the rest comes
    theirs.close()


def test_a_salvaged_packet_the_gateway_refuses_still_closes_the_connection() -> None:
    client, _, theirs = _dying_broker()
    closed: list[object] = []
    client.on_disconnect = lambda *args: closed.append(args)

    def full(*fields: object) -> None:
        raise asyncio.QueueFull  # the intake past its limit: told, not dropped in silence

    client.deliver = full
    theirs.sendall(_publish_bytes(b"a", b"1", 1))
    _reset(client, theirs)
    client.ack(9, 1)
    with pytest.raises(asyncio.QueueFull):
        client.loop_write()
    assert client._sock is None and len(closed) == 1 and not client._salvaging


def test_a_salvage_stops_at_its_bound_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(paho_client, "SALVAGE_PACKETS", 2)
    client, got, theirs = _dying_broker()
    theirs.sendall(b"".join(_publish_bytes(b"a", b"%d" % n, n) for n in (1, 2, 3)))
    _reset(client, theirs)
    client.ack(9, 1)
    with caplog.at_level(logging.WARNING, logger="gateway.messages.paho_client"):
        assert client.loop_write() == paho.MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert [fields[4] for fields in got] == [1, 2] and client._sock is None
    assert "took 2 of them and closed it with the rest unread" in caplog.text


def test_a_write_inside_a_salvage_does_not_salvage_again() -> None:
    """Without a pump asking for writes, paho writes an acknowledgement at once, from inside the
    salvage's handling of a packet: that write fails too, and must neither read the packet being
    handled again (it did, until the recursion limit) nor end the salvage."""
    client, got, theirs = _dying_broker()
    client._manual_ack = False  # paho acknowledges each PUBLISH as it is handled
    client.on_socket_register_write = None
    closed: list[object] = []
    client.on_disconnect = lambda *args: closed.append(args)
    theirs.sendall(b"".join(_publish_bytes(b"a", b"%d" % n, n) for n in (1, 2, 3)))
    _reset(client, theirs)
    failed = client._send_puback(9)  # written at once: it fails and salvages
    assert failed == paho.MQTTErrorCode.MQTT_ERR_CONN_LOST  # the outer failure is reported
    assert [fields[4] for fields in got] == [1, 2, 3]
    assert client._sock is None and len(closed) == 1 and not client._salvaging


def test_only_a_plain_socket_is_salvaged_through_tls_the_pump_reads_first() -> None:
    client, _ = _client()
    with socket.socket() as plain:
        client._sock = plain
        assert client.salvages
        context = ssl.create_default_context()
        with context.wrap_socket(
            socket.socket(), server_hostname="broker", do_handshake_on_connect=False
        ) as tls:
            client._sock = tls
            assert not client.salvages
    client._sock = None
