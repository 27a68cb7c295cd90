"""The socket pump alone: a stand-in for paho's client over a real socket pair."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

import pytest
from paho.mqtt.enums import MQTTErrorCode

from gateway.messages.paho_client import LoopClient
from gateway.messages.pump import READ_BURST, RETRY_READ_SECONDS, SocketPump, WritesHeld


class _Client:
    """What the pump calls of paho's client; reads whatever the socket holds, one byte a call."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffered = False
        self.drained = False
        self.salvages = True  # a plain socket's client: a failed write reads what is left
        self.read_rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self.reads = 0
        self.read_seen = asyncio.Event()
        self.writes = 0
        self.on_socket_open: Any = None
        self.on_socket_register_write: Any = None
        self.on_socket_unregister_write: Any = None

    def loop_read(self) -> MQTTErrorCode:
        self.reads += 1
        self.read_seen.set()
        if self.read_rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            try:
                self.sock.recv(1)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
        return self.read_rc

    def loop_write(self) -> MQTTErrorCode:
        self.writes += 1
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def want_write(self) -> bool:
        return False

    def loop_misc(self) -> MQTTErrorCode:
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class _Rig:
    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.client = _Client(self.ours)
        self.closed = False
        self.failures: list[str] = []
        self.pump = SocketPump(
            asyncio.get_running_loop(),
            cast(LoopClient, self.client),
            lambda: self.closed,
            self.failures.append,
        )

    async def attached(self) -> None:
        self.client.on_socket_open(None, None, self.ours)
        while self.pump.sock is None:  # attached on the loop's next turn
            await asyncio.sleep(0)

    def close(self) -> None:
        self.pump.stop()
        self.ours.close()
        self.theirs.close()


async def test_socket_open_registers_the_pumps_callbacks_and_attaches() -> None:
    rig = _Rig()
    await rig.attached()
    assert rig.pump.sock is rig.ours and rig.pump.reading
    rig.theirs.send(b"abc")
    async with asyncio.timeout(5):
        await rig.client.read_seen.wait()
    # one readiness reads everything waiting, not one packet per turn of the loop
    assert rig.client.reads >= 3
    assert rig.failures == []
    rig.close()


async def test_a_socket_that_opens_after_the_session_ended_is_closed_not_kept() -> None:
    """paho connects in a thread: a session ended meanwhile (a timeout, a cancelled open) must
    not keep the socket open, with nobody reading it, for the broker to time out."""
    rig = _Rig()
    rig.closed = True
    rig.client.on_socket_open(None, None, rig.ours)
    async with asyncio.timeout(5):
        while rig.ours.fileno() != -1:  # closed on the loop's next turn
            await asyncio.sleep(0)
    assert rig.pump.sock is None and not rig.pump.reading
    assert rig.theirs.recv(1) == b""  # the other end hears the end at once
    rig.close()


async def test_a_burst_is_bounded_so_one_socket_cannot_starve_the_loop() -> None:
    rig = _Rig()
    await rig.attached()
    rig.theirs.send(b"x" * (3 * READ_BURST))
    rig.pump.pause_reading()
    rig.pump.resume_reading()
    rig.pump.read()  # what the loop calls when the socket is readable
    assert rig.client.reads == READ_BURST + 1
    rig.close()


async def test_a_read_that_emptied_the_socket_asks_the_kernel_nothing_more() -> None:
    """``drained``: the client's last recv took less than it asked for. Bytes that arrived
    after it are left to the next readiness, not looked for with an ioctl per packet."""
    rig = _Rig()
    await rig.attached()
    rig.pump.pause_reading()
    rig.pump.resume_reading()
    rig.theirs.send(b"xyz")
    rig.client.drained = True
    rig.pump.read()
    assert rig.client.reads == 1
    rig.client.drained = False
    rig.pump.read()  # not drained: everything waiting is read in the same call
    assert rig.client.reads == 1 + 2
    rig.close()


async def test_a_failed_read_is_reported_once_with_its_reason() -> None:
    rig = _Rig()
    await rig.attached()
    rig.client.read_rc = MQTTErrorCode.MQTT_ERR_CONN_LOST
    rig.pump.read()
    assert len(rig.failures) == 1 and rig.failures[0].startswith("read failed: ")
    rig.close()


async def test_paused_reading_resumes_with_what_the_client_buffered() -> None:
    rig = _Rig()
    await rig.attached()
    rig.pump.pause_reading()
    assert not rig.pump.reading
    rig.client.buffered = True  # read before the pause: epoll will not report it
    rig.client.read_seen.clear()
    rig.pump.resume_reading()
    async with asyncio.timeout(5):
        await rig.client.read_seen.wait()
    rig.client.buffered = False
    assert rig.pump.reading
    rig.close()


async def test_writes_queued_in_a_turn_go_out_together_at_its_end() -> None:
    rig = _Rig()
    await rig.attached()
    for _ in range(5):
        rig.client.on_socket_register_write(None, None, rig.ours)
    assert rig.client.writes == 0
    fence = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fence.set_result, None)
    await fence
    assert rig.client.writes == 1
    rig.close()


async def test_held_writes_go_out_as_the_hold_ends_in_the_same_turn() -> None:
    """The pipeline after a commit: PUBACKs and upstream PUBLISHes leave before it returns to
    the loop, one write per socket, the outermost hold sending."""
    rig = _Rig()
    other = _Rig()
    await rig.attached()
    await other.attached()
    with WritesHeld():
        with WritesHeld():
            for _ in range(5):
                rig.client.on_socket_register_write(None, None, rig.ours)
            other.client.on_socket_register_write(None, None, other.ours)
        assert rig.client.writes == 0 and other.client.writes == 0  # the inner hold sent nothing
    assert rig.client.writes == 1 and other.client.writes == 1
    # Not held: the flush waits for the end of the turn, as before.
    rig.client.on_socket_register_write(None, None, rig.ours)
    assert rig.client.writes == 1
    rig.close()
    other.close()


async def test_a_flush_leaves_what_arrived_for_the_loops_next_look_unless_it_cannot_salvage() -> (
    None
):
    """A plain socket's client reads what a dead broker left when its write fails, so the flush
    after a commit does not read what arrived during it: that waits for the paced selector.
    Through TLS (no salvage) the flush reads first, as before."""
    rig = _Rig()
    await rig.attached()
    rig.theirs.send(b"x")
    rig.pump.flush(rig.ours)
    assert (rig.client.reads, rig.client.writes) == (0, 1)
    rig.client.salvages = False
    rig.pump.flush(rig.ours)
    assert (rig.client.reads, rig.client.writes) == (1, 2)
    rig.close()


async def test_a_read_before_a_flush_that_raises_does_not_skip_the_write() -> None:
    """paho asks for a flush once per queued write: a read that raised (a full intake, a
    callback's error) and skipped the write would stall the connection's acknowledgements."""
    rig = _Rig()
    await rig.attached()
    rig.client.salvages = False  # through TLS
    rig.theirs.send(b"x")  # something waits: the flush reads first

    def failing_read() -> MQTTErrorCode:
        raise asyncio.QueueFull

    rig.client.loop_read = failing_read  # type: ignore[method-assign]
    rig.client.want_write = lambda: True  # type: ignore[method-assign]  # the buffer filled up
    with pytest.raises(asyncio.QueueFull):  # told, as before, after the write
        rig.pump.flush(rig.ours)
    assert rig.client.writes == 1
    assert rig.pump._writing  # and the rest goes out once the socket drains
    rig.close()


async def test_packets_left_in_the_buffer_by_a_read_that_raised_are_read_a_little_later() -> None:
    """epoll cannot see bytes already in the client's buffer, and no flush reads them any more:
    after a callback raised, the pump reads on by itself, not at once (no spinning)."""
    rig = _Rig()
    await rig.attached()
    loop = asyncio.get_running_loop()
    calls: list[float] = []

    def raising_once() -> MQTTErrorCode:
        calls.append(loop.time())
        if len(calls) == 1:
            rig.client.buffered = True
            raise ValueError("a callback's error")
        rig.client.buffered = False
        rig.client.read_seen.set()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    rig.client.loop_read = raising_once  # type: ignore[method-assign]
    rig.client.read_seen.clear()
    with pytest.raises(ValueError, match="a callback's error"):
        rig.pump.read()
    async with asyncio.timeout(5):
        await rig.client.read_seen.wait()
    assert len(calls) == 2 and calls[1] - calls[0] >= RETRY_READ_SECONDS * 0.9
    rig.close()


async def test_one_retry_however_often_a_read_raises_and_none_after_the_session_stops() -> None:
    rig = _Rig()
    await rig.attached()
    calls: list[int] = []

    def raising() -> MQTTErrorCode:
        calls.append(1)
        rig.client.buffered = True
        raise ValueError("a callback's error")

    rig.client.loop_read = raising  # type: ignore[method-assign]
    for _ in range(3):
        with pytest.raises(ValueError):
            rig.pump.read()
    assert len(calls) == 3
    pending = rig.pump._retry
    assert pending is not None  # one timer for all three
    with pytest.raises(ValueError):  # read on at once (a resumed reading), raising again
        rig.pump._read_buffered()
    assert pending.cancelled() and rig.pump._retry is not None  # still one timer, not two
    pending = rig.pump._retry
    rig.pump.stop()
    assert pending.cancelled() and rig.pump._retry is None
    rig.ours.close()
    rig.theirs.close()


async def test_a_closed_session_is_not_attached_and_stop_hands_back_the_socket() -> None:
    rig = _Rig()
    rig.closed = True
    rig.client.on_socket_open(None, None, rig.ours)
    fence = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fence.set_result, None)
    await fence
    assert rig.pump.sock is None
    rig.closed = False
    await rig.attached()
    assert rig.pump.stop() is rig.ours
    assert rig.pump.sock is None and not rig.pump.reading
    rig.close()
