"""The paced selector (gateway/messages/pacing.py) on real sockets: traffic soon after a wake-up
waits out the interval and arrives together with what came meanwhile; traffic after a quiet
spell, a loop that only polls, and the loop's own wake-up pipe are never held back; a pause
never outlasts the loop's timeout; and the gateway's MQTT traffic is gathered on it, all of it
arriving in order; and a pause is a whole number of milliseconds that never holds a message
past the interval."""

from __future__ import annotations

import asyncio
import math
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.messages import pacing
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.messages.pacing import PacedSelector, paced_loop_factory

INTERVAL = 0.05  # long against the scheduler's jitter, so the bounds below are not flaky


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def _paced(
    pairs: list[tuple[socket.socket, socket.socket]], interval: float = INTERVAL
) -> PacedSelector:
    selector = PacedSelector(interval)
    for reading, _ in pairs:
        reading.setblocking(False)
        selector.register(reading, selectors.EVENT_READ)
    return selector


def _ready(events: list[tuple[selectors.SelectorKey, int]]) -> set[int]:
    return {key.fd for key, _ in events}


def test_traffic_soon_after_a_wake_up_waits_the_interval_and_comes_with_what_arrived_meanwhile(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    selector = _paced(pairs)
    (first, first_peer), (second, second_peer), (third, third_peer) = pairs
    first_peer.send(b"a")
    woke = time.monotonic()
    assert _ready(selector.select(5)) == {first.fileno()}  # the first wake-up: at once
    assert time.monotonic() - woke < INTERVAL / 2
    first.recv(16)
    # A packet right after, and another one a little later but within the interval: both
    # arrive in one wake-up, no sooner than the interval after the first.
    second_peer.send(b"b")
    threading.Timer(INTERVAL / 3, third_peer.send, (b"c",)).start()
    events = selector.select(5)
    assert INTERVAL <= time.monotonic() - woke < 2 * INTERVAL
    assert _ready(events) == {second.fileno(), third.fileno()}
    assert selector.pauses == 1
    selector.close()


def test_a_pause_ends_for_an_exempt_socket_and_never_outlasts_the_loops_timeout(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    selector = _paced(pairs)
    (first, first_peer), (second, second_peer), (pipe, pipe_peer) = pairs
    selector.unregister(pipe)
    selector.register(pipe, selectors.EVENT_READ)
    selector.exempt(pipe.fileno())
    first_peer.send(b"a")
    selector.select(5)
    first.recv(16)
    # Traffic right after a wake-up starts a pause; a thread answering 5 ms into it ends it:
    # the answer, and the traffic with it, come at once, not at the end of the interval.
    second_peer.send(b"b")
    started = time.monotonic()
    threading.Timer(0.005, pipe_peer.send, (b"!",)).start()
    assert _ready(selector.select(5)) == {second.fileno(), pipe.fileno()}
    assert time.monotonic() - started < INTERVAL / 2
    second.recv(16)
    pipe.recv(16)
    # A timer due in 5 ms (the loop's timeout) is not overshot by a pause.
    first_peer.send(b"c")
    started = time.monotonic()
    assert _ready(selector.select(0.005)) == {first.fileno()}
    assert time.monotonic() - started < INTERVAL / 2
    selector.close()


def test_traffic_after_a_quiet_spell_and_a_polling_loop_are_not_held_back(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    selector = _paced(pairs)
    (first, first_peer), (second, second_peer), _ = pairs
    first_peer.send(b"a")
    selector.select(5)
    first.recv(16)
    # A loop with work queued only polls (timeout 0): it gets what is ready, unpaced.
    second_peer.send(b"b")
    deadline = time.monotonic() + 5
    polled: list[tuple[selectors.SelectorKey, int]] = []
    while not polled and time.monotonic() < deadline:
        asked = time.monotonic()
        polled = selector.select(0)
    assert _ready(polled) == {second.fileno()}
    assert time.monotonic() - asked < INTERVAL / 2
    second.recv(16)
    # Nothing for longer than the interval: the next packet wakes the loop at once.
    time.sleep(INTERVAL * 1.5)
    first_peer.send(b"c")
    sent = time.monotonic()
    assert _ready(selector.select(5)) == {first.fileno()}
    assert time.monotonic() - sent < INTERVAL / 2
    selector.close()


def test_an_exempt_socket_wakes_at_once_and_does_not_start_an_interval(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    selector = _paced(pairs)
    (first, first_peer), (pipe, pipe_peer), _ = pairs
    selector.exempt(pipe.fileno())
    first_peer.send(b"a")
    selector.select(5)
    first.recv(16)
    pipe_peer.send(b"!")  # a helper thread's answer, right after the wake-up for traffic
    answered = time.monotonic()
    assert _ready(selector.select(5)) == {pipe.fileno()}
    assert time.monotonic() - answered < INTERVAL / 2
    selector.close()


def test_the_loop_exempts_its_own_wake_up_pipe_so_answers_from_threads_come_at_once() -> None:
    loop = paced_loop_factory(INTERVAL)()
    try:
        selector = loop._selector  # type: ignore[attr-defined]
        assert isinstance(selector, PacedSelector) and selector.interval == INTERVAL

        async def traffic_then_an_answer() -> float:
            reading, writing = socket.socketpair()
            got = asyncio.Event()

            def arrived() -> None:
                reading.recv(16)
                got.set()

            loop.add_reader(reading, arrived)
            writing.send(b"x")
            await got.wait()  # a wake-up for traffic has just happened
            loop.remove_reader(reading)
            reading.close()
            writing.close()
            started = time.monotonic()
            # A commit on the helper thread: the loop blocks in select meanwhile, and the
            # answer wakes it through the pipe.
            await asyncio.to_thread(time.sleep, INTERVAL / 10)
            return time.monotonic() - started

        assert loop.run_until_complete(traffic_then_an_answer()) < INTERVAL / 2
    finally:
        loop.close()


def test_mqtt_traffic_on_the_paced_loop_is_gathered_and_all_of_it_arrives(tmp_path: Path) -> None:
    # The gateway's own MQTT stack on the gateway's loop, against a real Mosquitto: a device
    # publishing a message every millisecond and a subscriber on the same loop. The subscriber's
    # wake-ups are paced (several messages per wake-up), none is lost, and the order holds.
    loop = paced_loop_factory(0.01)()
    selector = loop._selector  # type: ignore[attr-defined]
    assert isinstance(selector, PacedSelector)

    async def run() -> list[bytes]:
        broker = Mosquitto(MosquittoSettings(directory=tmp_path, port=free_port(), anonymous=True))
        broker.write_files([])
        await broker.start()
        received: list[bytes] = []
        done = asyncio.Event()

        def on_message(message: Inbound) -> None:
            received.append(message.payload)
            if len(received) == 200:
                done.set()

        endpoint = Endpoint("127.0.0.1", broker.settings.port, "cloud")
        cloud = MqttConnection(endpoint, on_message=on_message)
        device = MqttConnection(Endpoint("127.0.0.1", broker.settings.port, "device"))
        try:
            await cloud.open()
            await cloud.subscribe("plant/#", 1)
            await device.open()
            selector.pauses = 0
            for n in range(200):
                device.publish("plant/press-1/telemetry", b"%d" % n, 1)
                await asyncio.sleep(0.001)
            async with asyncio.timeout(30):
                await done.wait()
        finally:
            await device.close()
            await cloud.close()
            await broker.stop()
        return received

    try:
        assert loop.run_until_complete(run()) == [b"%d" % n for n in range(200)]
        assert selector.pauses > 0  # the pump's end-of-turn writes do not keep the loop busy
    finally:
        loop.close()


class _StoppedClock:
    """``time`` for the selector: ``monotonic`` stands still, so a pause is exact arithmetic."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def _epoll_ms(seconds: float) -> int:
    """The milliseconds ``select.epoll.poll(seconds)`` asks of the kernel: CPython rounds the
    seconds up to nanoseconds, then up to whole milliseconds (seen with strace: 0.0085 -> 9)."""
    nanoseconds = math.ceil(seconds * 1e9)
    return -(-nanoseconds // 1_000_000)


class _RecordingWaker:
    """``select.epoll`` for a pause: the milliseconds of each wait recorded instead of slept."""

    def __init__(self) -> None:
        self.waits_ms: list[int] = []
        self.closed = False

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        self.waits_ms.append(_epoll_ms(timeout))
        return []

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("interval_ms", "since_ms", "held_ms"),
    [
        (2, 0.3, 2),  # 1.7 ms left: up to 2, within the 2
        (2, 1.0, 1),  # exactly on the grid: left as it is
        (3, 1.0, 2),  # 2.000000000066 ms left in floats: 2, not a millisecond more
        (9, 0.3, 9),  # 8.7 left: 9 (Python's selector turned 9 ms into a 10 ms epoll wait)
        (7.5, 0.2, 7),  # 7.3 left: up would be 8 > 7.5, so down to 7
        (7.5, 0.7, 7),  # 6.8 left: up to 7, within 7.5
        (7.5, 7.2, 1),  # 0.3 left: up to 1, within 7.5 (the hold counts from the arrival)
        (0.5, 0.1, 0),  # 0.4 left: up would be 1 > 0.5, down is 0: no pause, read at once
    ],
)
def test_a_pause_is_whole_milliseconds_and_never_holds_a_message_past_the_interval(
    pairs: list[tuple[socket.socket, socket.socket]],
    monkeypatch: pytest.MonkeyPatch,
    interval_ms: float,
    since_ms: float,
    held_ms: int,
) -> None:
    # A packet that woke the loop ``since_ms`` after the last wake-up for traffic is held
    # ``held_ms``: the milliseconds epoll is asked to wait, never more than the interval, which
    # pipeline.wake_interval_ms promises as the most a message is read later.
    selector = _paced(pairs[:1], interval_ms / 1000)
    (first, first_peer), _, _ = pairs
    selector._waker.close()
    waker = _RecordingWaker()
    monkeypatch.setattr(selector, "_waker", waker)
    clock = _StoppedClock(1000.0)
    monkeypatch.setattr(pacing, "time", clock)
    selector._woke = clock.now - since_ms / 1000
    first_peer.send(b"a")
    try:
        assert _ready(selector.select(5)) == {first.fileno()}
        assert waker.waits_ms == ([held_ms] if held_ms else [])
        assert all(wait <= interval_ms for wait in waker.waits_ms)
        assert selector.pauses == (1 if held_ms else 0)
    finally:
        selector.close()
    assert waker.closed
