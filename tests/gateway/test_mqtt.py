"""The paho-on-asyncio adapter against a real Mosquitto."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from gateway.devices.broker_files import AclRule, hash_password
from gateway.messages.endpoint import (
    ConnectionLost,
    Endpoint,
    Inbound,
    MqttError,
    SubscriptionRefused,
)
from gateway.messages.mqtt import MqttConnection
from tests.conftest import BrokerFactory


def endpoint(
    port: int, client_id: str, user: str | None = None, password: str | None = None
) -> Endpoint:
    return Endpoint("127.0.0.1", port, client_id, username=user, password=password)


async def test_publish_subscribe_roundtrip_qos1(brokers: BrokerFactory) -> None:
    broker = await brokers()
    got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    sub = MqttConnection(endpoint(broker.settings.port, "sub"), on_message=got.put_nowait)
    pub = MqttConnection(endpoint(broker.settings.port, "pub"))
    await sub.open()
    await pub.open()
    assert await sub.subscribe("t/#", 1) == 1
    futures = [pub.publish(f"t/{i}", f"m{i}".encode(), 1) for i in range(50)]
    await asyncio.gather(*futures)  # every PUBACK arrived
    received = [await asyncio.wait_for(got.get(), 5) for _ in range(50)]
    assert [m.payload for m in received] == [f"m{i}".encode() for i in range(50)]
    assert all(m.qos == 1 for m in received)
    await sub.close()
    await pub.close()
    assert sub.closed.done() and pub.closed.done()


async def test_unacked_messages_are_redelivered_to_a_persistent_session(
    brokers: BrokerFactory,
) -> None:
    broker = await brokers()
    port = broker.settings.port
    first: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    sub = MqttConnection(
        endpoint(port, "gw"), on_message=first.put_nowait, manual_ack=True, clean_session=False
    )
    await sub.open()
    await sub.subscribe("d/#", 1)
    pub = MqttConnection(endpoint(port, "dev"))
    await pub.open()
    await asyncio.gather(*(pub.publish("d/x", f"{i}".encode(), 1) for i in range(5)))
    got = [await asyncio.wait_for(first.get(), 5) for _ in range(5)]
    got[0].ack()  # only the first is acknowledged
    # The fence: the broker reads one client's packets in order, so once it answers a
    # SUBSCRIBE sent after the PUBACK, it has taken the PUBACK.
    await sub.subscribe("fence/none", 1)
    await sub.close()
    again: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    sub2 = MqttConnection(
        endpoint(port, "gw"), on_message=again.put_nowait, manual_ack=True, clean_session=False
    )
    await sub2.open()
    redelivered = [await asyncio.wait_for(again.get(), 5) for _ in range(4)]
    assert sorted(m.payload for m in redelivered) == [b"1", b"2", b"3", b"4"]
    for m in redelivered:
        m.ack()
    await sub2.close()
    await pub.close()


async def test_wrong_password_is_refused_with_a_clear_reason(brokers: BrokerFactory) -> None:
    rules = [AclRule("dev1", hash_password("right"), readwrite=("dev1/#",))]
    broker = await brokers(anonymous=False, rules=rules)
    conn = MqttConnection(endpoint(broker.settings.port, "c1", "dev1", "wrong"))
    with pytest.raises(MqttError, match=r"bad user name or password|not authorised"):
        await conn.open()
    ok = MqttConnection(endpoint(broker.settings.port, "c2", "dev1", "right"))
    await ok.open()
    await ok.close()


async def test_nothing_listening_names_the_endpoint(brokers: BrokerFactory) -> None:
    from gateway.devices.ports import free_port

    port = free_port()
    conn = MqttConnection(endpoint(port, "c"))
    with pytest.raises(MqttError, match=f"127.0.0.1:{port}"):
        await conn.open(timeout=3)


async def test_publish_after_broker_death_fails_with_connection_lost(
    brokers: BrokerFactory,
) -> None:
    broker = await brokers()
    conn = MqttConnection(endpoint(broker.settings.port, "c"))
    await conn.open()
    broker.kill()
    await asyncio.wait_for(asyncio.shield(conn.closed), 5)
    with pytest.raises(ConnectionLost):
        await conn.publish("t", b"x", 1)


async def test_send_tells_each_publish_once_acknowledged_then_lost(
    brokers: BrokerFactory,
) -> None:
    """The forwarder's path: one call per publish, None on its PUBACK, ConnectionLost for what
    the session could not deliver, and never both."""
    broker = await brokers()
    conn = MqttConnection(endpoint(broker.settings.port, "c"))
    await conn.open()
    told: dict[int, list[BaseException | None]] = {}
    all_acked = asyncio.Event()

    def tell(i: int, error: BaseException | None) -> None:
        told.setdefault(i, []).append(error)
        if len(told) == 50:
            all_acked.set()

    for i in range(50):
        conn.send(f"t/{i}", b"x", 1, functools.partial(tell, i))
    async with asyncio.timeout(10):
        await all_acked.wait()
    assert told == {i: [None] for i in range(50)}
    assert not conn._publishes
    for i in range(50, 80):  # queued in this turn, before anything is written
        conn.send(f"t/{i}", b"x", 1, functools.partial(tell, i))
    broker.kill()
    await asyncio.wait_for(asyncio.shield(conn.closed), 5)
    assert sorted(told) == list(range(80))
    late = [errors for i, errors in told.items() if i >= 50]
    assert all(len(errors) == 1 for errors in late)
    assert all(isinstance(e[0], ConnectionLost) for e in late)
    conn.send("t/after", b"x", 1, functools.partial(tell, 80))  # closed: told at once
    assert len(told[80]) == 1 and isinstance(told[80][0], ConnectionLost)


async def test_a_sender_failing_when_told_of_the_loss_still_ends_the_session(
    brokers: BrokerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """``closed`` is what a link's supervisor waits on to reconnect: one sender's callback
    raising must neither keep it unset nor leave the other publishes untold."""
    broker = await brokers()
    conn = MqttConnection(endpoint(broker.settings.port, "c"))
    await conn.open()
    told: list[int] = []

    def tell(i: int, error: BaseException | None) -> None:
        if i == 1:
            raise RuntimeError("a sender's own bug")
        assert isinstance(error, ConnectionLost)
        told.append(i)

    for i in range(3):  # queued in this turn: none can be acknowledged before the kill
        conn.send(f"t/{i}", b"x", 1, functools.partial(tell, i))
    broker.kill()
    assert await asyncio.wait_for(asyncio.shield(conn.closed), 5)
    assert told == [0, 2]
    assert "telling a publish that the connection was lost failed" in caplog.text
    assert "a sender's own bug" in caplog.text


async def test_an_open_cancelled_while_connecting_ends_the_session(brokers: BrokerFactory) -> None:
    """A forwarder stopped while it connects: the session it started must end, not run on
    unheld with its keepalives once the CONNACK comes."""
    broker = await brokers()
    conn = MqttConnection(endpoint(broker.settings.port, "c"))
    async with asyncio.TaskGroup() as tasks:
        opening = tasks.create_task(conn.open(), name="open")
        await asyncio.sleep(0)  # the open has started: paho's connect is handed to a thread
        opening.cancel()
    assert opening.cancelled()
    assert conn.closed.done() and conn.closed.result() == "cancelled while connecting"
    assert not conn.is_open
    async with asyncio.timeout(5):  # the thread's connect ends; the socket it opened is closed
        while (sock := conn._client.socket()) is None or sock.fileno() != -1:
            await asyncio.sleep(0.01)


async def test_a_topic_paho_refuses_is_told_as_an_error_not_raised(brokers: BrokerFactory) -> None:
    """A topic over MQTT's 65,535 bytes: ``send`` tells its caller (the forwarder, called from
    the pipeline's committing turn) instead of raising through it; the session goes on."""
    broker = await brokers()
    conn = MqttConnection(endpoint(broker.settings.port, "c"))
    await conn.open()
    try:
        told: list[BaseException | None] = []
        conn.send("t/" + "x" * 65_535, b"x", 1, told.append)
        (error,) = told
        assert isinstance(error, MqttError) and not isinstance(error, ConnectionLost)
        assert "cannot publish to this topic" in str(error)
        await conn.publish("t/ok", b"x", 1)  # the session is untouched
    finally:
        await conn.close()


async def _watching(port: int) -> tuple[MqttConnection, asyncio.Queue[Inbound]]:
    """The gateway's user ("gw", "gwpw"), subscribed to everything, and what it receives."""
    seen: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    gw = MqttConnection(endpoint(port, "gw", "gw", "gwpw"), on_message=seen.put_nowait)
    await gw.open()
    await gw.subscribe("#", 1)
    return gw, seen


async def test_acl_lets_a_device_publish_only_under_its_own_topics(brokers: BrokerFactory) -> None:
    from gateway.devices.broker_files import device_rule, gateway_rule

    rules = [
        gateway_rule("gw", hash_password("gwpw")),
        # oven-1 reads its command topic: the fence that tells its '#' spy when to look.
        device_rule("oven-1", hash_password("pw1"), ["bakery/oven-1/{stream}"], ["cmd/oven-1"]),
        device_rule("oven-2", hash_password("pw2"), ["bakery/oven-2/{stream}"]),
    ]
    broker = await brokers(anonymous=False, rules=rules)
    port = broker.settings.port
    gw, seen = await _watching(port)
    dev = MqttConnection(endpoint(port, "oven-1", "oven-1", "pw1"))
    await dev.open()
    await dev.publish("bakery/oven-2/telemetry", b"forged", 1)  # another device's topic: dropped
    await dev.publish("bakery/oven-1/telemetry", b"own", 1)
    # The own publish is the fence: Mosquitto handles one client's publishes in order, so had
    # the forged one got through, it would have arrived before it.
    msg = await asyncio.wait_for(seen.get(), 5)
    assert (msg.topic, msg.payload) == ("bakery/oven-1/telemetry", b"own"), (
        "a forged publish under another device's topic got through"
    )
    assert seen.empty()
    # A device may subscribe to '#', but Mosquitto's ACL delivers it nothing of other devices.
    spy_inbox: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    spy = MqttConnection(
        endpoint(port, "oven-1b", "oven-1", "pw1"), on_message=spy_inbox.put_nowait
    )
    await spy.open()
    await spy.subscribe("#", 1)
    other = MqttConnection(endpoint(port, "oven-2", "oven-2", "pw2"))
    await other.open()
    await other.publish("bakery/oven-2/telemetry", b"private to oven-2", 1)
    assert (await asyncio.wait_for(seen.get(), 5)).payload == b"private to oven-2"
    # Fence: oven-2's message was routed (the gateway has it) before this one is sent, and the
    # spy's deliveries keep the broker's order; so if the fence comes first, nothing leaked.
    await gw.publish("cmd/oven-1", b"fence", 1)
    first = await asyncio.wait_for(spy_inbox.get(), 5)
    assert (first.topic, first.payload) == ("cmd/oven-1", b"fence"), (
        f"a device read another device's message: {first.topic} {first.payload!r}"
    )
    assert spy_inbox.empty(), "a device read another device's message"
    for conn in (spy, other, dev, gw):
        await conn.close()


async def test_a_first_level_wildcard_device_cannot_publish_in_another_customers_namespace(
    brokers: BrokerFactory,
) -> None:
    """A Shelly-style ``{id}/events/rpc`` becomes the filter ``+/events/rpc``, which also
    matches ``devices/events/rpc`` in customer "events"'s namespace: denied there, its own
    namespace and the family's other topics still allowed."""
    from gateway.devices.broker_files import device_rule, gateway_rule

    rules = [
        gateway_rule("gw", hash_password("gwpw")),
        device_rule(
            "acme.shelly",
            hash_password("pw"),
            ["{id}/events/rpc"],
            others=["events", "mueller"],
        ),
    ]
    broker = await brokers(anonymous=False, rules=rules)
    port = broker.settings.port
    gw, seen = await _watching(port)
    dev = MqttConnection(endpoint(port, "acme.shelly", "acme.shelly", "pw"))
    await dev.open()
    await dev.publish("devices/events/rpc", b"forged", 1)  # customer "events"'s namespace
    await dev.publish("shelly-1/events/rpc", b"own", 1)  # the fence: one client's order
    msg = await asyncio.wait_for(seen.get(), 5)
    assert (msg.topic, msg.payload) == ("shelly-1/events/rpc", b"own"), (
        "a wildcard device published into another customer's namespace"
    )
    assert seen.empty()
    for conn in (dev, gw):
        await conn.close()


async def test_a_burst_larger_than_the_socket_buffer_all_goes_out_in_order(
    brokers: BrokerFactory,
) -> None:
    """Publishes are written at the end of the loop's turn; when the socket buffer fills, the
    rest must wait for the socket to drain rather than be dropped or reordered."""
    broker = await brokers()
    got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=1000)
    sub = MqttConnection(endpoint(broker.settings.port, "sub"), on_message=got.put_nowait)
    pub = MqttConnection(endpoint(broker.settings.port, "pub"), max_inflight=1000)
    await sub.open()
    await pub.open()
    await sub.subscribe("big/#", 1)
    body = b"x" * 64 * 1024  # 400 x 64 KiB in one turn: far beyond a loopback socket buffer
    futures = [pub.publish("big/t", i.to_bytes(4, "big") + body, 1) for i in range(400)]
    assert pub._client.want_write()  # the burst did not fit: the writer waits for the socket
    async with asyncio.timeout(30):
        await asyncio.gather(*futures)
        received = [await got.get() for _ in range(400)]
    assert [int.from_bytes(m.payload[:4], "big") for m in received] == list(range(400))
    assert all(len(m.payload) == len(body) + 4 for m in received)
    await sub.close()
    await pub.close()


async def test_packets_queued_in_one_turn_go_out_in_one_send(brokers: BrokerFactory) -> None:
    """A batch's acknowledgements (and a forwarder's publishes) are written with one system call,
    not one per packet; every one of them still arrives and is acknowledged."""
    broker = await brokers()
    got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=100)
    sub = MqttConnection(endpoint(broker.settings.port, "sub"), on_message=got.put_nowait)
    pub = MqttConnection(endpoint(broker.settings.port, "pub"))
    await sub.open()
    await pub.open()
    await sub.subscribe("t/#", 1)
    sends: list[int] = []
    send = pub._client._sock_send

    def counting(buf: bytes | bytearray) -> int:
        written = send(buf)
        sends.append(written)
        return written

    pub._client._sock_send = counting  # type: ignore[method-assign]
    futures = [pub.publish(f"t/{i}", f"m{i}".encode(), 1) for i in range(50)]
    async with asyncio.timeout(10):
        await asyncio.gather(*futures)  # every PUBACK arrived
        received = [await got.get() for _ in range(50)]
    assert [m.payload for m in received] == [f"m{i}".encode() for i in range(50)]
    assert len(sends) == 1, sends  # 50 PUBLISH packets, one send
    await sub.close()
    await pub.close()


async def test_acknowledgements_sent_just_before_stepping_back_are_never_lost(
    brokers: BrokerFactory,
) -> None:
    """The device link acknowledges a batch and may step back in the same turn, then connect
    again at once. Mosquitto drops what it has not read from the old socket when a new one takes
    the client id over; closing at once lost most acknowledgements in about one round in ten
    here (148 of 150 came back). ``close`` waits for the broker's EOF, so none may come back."""
    broker = await brokers()
    port = broker.settings.port
    pub = MqttConnection(endpoint(port, "dev"))
    await pub.open()
    got: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=1000)

    def session() -> MqttConnection:
        return MqttConnection(
            endpoint(port, "gw"),
            on_message=got.put_nowait,
            manual_ack=True,
            clean_session=False,
            max_inflight=1000,
        )

    link = session()
    await link.open()
    await link.subscribe("d/#", 1)
    for round_ in range(25):
        await asyncio.gather(*(pub.publish("d/x", f"{round_}-{i}".encode(), 1) for i in range(60)))
        batch = [await asyncio.wait_for(got.get(), 5) for _ in range(60)]
        for message in batch[:45]:
            message.ack()
        await link.step_back()  # in the same turn as the acks, as the device link does
        assert link.returned
        link = session()
        await link.open()
        # The 15 unacknowledged come first, then the fence: nothing acknowledged came back.
        await pub.publish("d/fence", f"fence-{round_}".encode(), 1)
        back = []
        while not back or back[-1].topic != "d/fence":
            back.append(await asyncio.wait_for(got.get(), 5))
        assert [m.payload for m in back[:-1]] == [m.payload for m in batch[45:]], round_
        for message in back:
            message.ack()
    await link.close()
    await pub.close()


async def test_a_subscription_held_back_by_our_own_paused_reading_is_waited_for(
    brokers: BrokerFactory,
) -> None:
    """A restarted gateway's persistent session: the broker sends the queued backlog first and
    the SUBACK behind it, while the intake has stopped reading (its queue is full). Before, the
    10 s wait for the SUBACK ran out, the TimeoutError escaped and ended the gateway."""
    broker = await brokers()
    port = broker.settings.port
    first = MqttConnection(endpoint(port, "gw"), manual_ack=True, clean_session=False)
    await first.open()
    await first.subscribe("d/#", 1)
    await first.close()
    pub = MqttConnection(endpoint(port, "dev"))
    await pub.open()
    await asyncio.gather(*(pub.publish("d/x", f"{i}".encode(), 1) for i in range(300)))
    loop = asyncio.get_running_loop()
    got: list[Inbound] = []
    resumed = asyncio.Event()

    def take(message: Inbound) -> None:
        got.append(message)
        if len(got) == 1:  # the intake is full: stop reading, as it does, for longer than 0.5 s
            message.connection.pause_reading()
            loop.call_later(1.5, lambda: (message.connection.resume_reading(), resumed.set()))

    link = MqttConnection(
        endpoint(port, "gw"), on_message=take, manual_ack=True, clean_session=False
    )
    await link.open()
    assert link.session_present
    assert await link.subscribe("e/#", 1, timeout=0.5) == 1
    assert resumed.is_set()  # the answer came only after reading resumed, 1.5 s > 0.5 s
    assert {m.payload for m in got} >= {b"0"}
    await link.close()
    await pub.close()


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One MQTT control packet, as a stand-in broker reads it: (first byte, the rest)."""
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return kind, await reader.readexactly(length)


async def _stand_in_broker(behaviour: str) -> tuple[asyncio.Server, int]:
    """A broker that accepts the CONNECT and then answers a SUBSCRIBE as ``behaviour`` says:
    "silent" never, "busy" after 1.2 s of other messages sent every 0.1 s, "refusing" at once
    with a refusal (SUBACK 0x80, as its ACL says no)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_packet(reader)  # CONNECT
            writer.write(b"\x20\x02\x00\x00")
            while True:
                kind, body = await read_packet(reader)
                if kind >> 4 == 8 and behaviour == "refusing":  # SUBSCRIBE
                    writer.write(b"\x90\x03" + body[:2] + b"\x80")
                    await writer.drain()
                if kind >> 4 == 8 and behaviour == "busy":
                    for n in range(12):
                        payload = b"\x00\x01m" + str(n).encode()  # QoS 0 PUBLISH on "m"
                        writer.write(bytes([0x30, len(payload)]) + payload)
                        await writer.drain()
                        await asyncio.sleep(0.1)
                    writer.write(b"\x90\x03" + body[:2] + b"\x01")  # SUBACK, QoS 1 granted
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_subscription_answered_after_a_stream_of_messages_is_waited_for() -> None:
    server, port = await _stand_in_broker("busy")
    got: list[Inbound] = []
    link = MqttConnection(endpoint(port, "gw"), on_message=got.append)
    try:
        await link.open()
        assert await link.subscribe("d/#", 1, timeout=0.5) == 1
        assert len(got) == 12  # 1.2 s of messages: the broker was alive, only busy
    finally:
        await link.close()
        server.close()


async def test_a_subscription_the_broker_refuses_is_told_apart_from_one_it_missed() -> None:
    server, port = await _stand_in_broker("refusing")
    link = MqttConnection(endpoint(port, "gw"))
    try:
        await link.open()
        with pytest.raises(SubscriptionRefused, match="the broker refused a subscription"):
            await link.subscribe("d/#", 1, timeout=5)
    finally:
        await link.close()
        server.close()


@pytest.mark.parametrize(
    ("pause_at", "resume_at"),
    [(0.1, 0.2), (None, 0.3)],  # None: paused before the wait began
)
async def test_a_wait_that_spans_our_own_pause_is_not_the_brokers_silence(
    pause_at: float | None, resume_at: float
) -> None:
    """Reading paused at some time within one window of the wait, or when it began: the window
    proves nothing about the broker (its answer may lie unread in the socket when the window
    ends), so only the next window, read throughout, may fail. Before, a resume just before the
    window's end, with nothing read yet, failed the subscription of a restarted gateway's busy
    session."""
    server, port = await _stand_in_broker("silent")
    link = MqttConnection(endpoint(port, "gw"))
    loop = asyncio.get_running_loop()
    try:
        await link.open()
        if pause_at is None:
            link.pause_reading()
        else:
            loop.call_later(pause_at, link.pause_reading)
        loop.call_later(resume_at, link.resume_reading)
        started = time.monotonic()
        with pytest.raises(MqttError, match=r"did not confirm the subscription .* within 0\.5 s"):
            async with asyncio.timeout(5):  # a wait that never failed would fail here, not hang
                await link.subscribe("d/#", 1, timeout=0.5)
        assert time.monotonic() - started >= 1.0  # the window with the pause did not count
    finally:
        await link.close()
        server.close()


async def test_a_broker_that_never_confirms_a_subscription_is_an_mqtt_error() -> None:
    """The link's callers reconnect on MqttError; a bare TimeoutError ended the gateway."""
    server, port = await _stand_in_broker("silent")
    link = MqttConnection(endpoint(port, "gw"))
    try:
        await link.open()
        with pytest.raises(MqttError, match=r"127\.0\.0\.1.*did not confirm the subscription"):
            await link.subscribe("d/#", 1, timeout=0.3)
        with pytest.raises(MqttError, match=r"did not confirm dropping the subscription"):
            await link.unsubscribe("d/#", timeout=0.3)
    finally:
        await link.close()
        server.close()
