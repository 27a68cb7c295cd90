"""The paced selector (gateway/messages/pacing.py) on real sockets: traffic soon after a wake-up
waits out the interval and arrives together with what came meanwhile; traffic after a quiet
spell, a loop that only polls, and the loop's own wake-up pipe are never held back; and the
gateway's loop runs on it."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gateway.messages.pacing import PacedSelector, paced_loop_factory

INTERVAL = 0.05  # long against the scheduler's jitter, so the bounds below are not flaky


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def _paced(pairs: list[tuple[socket.socket, socket.socket]]) -> PacedSelector:
    selector = PacedSelector(INTERVAL)
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
    assert time.monotonic() - woke >= INTERVAL
    assert _ready(events) == {second.fileno(), third.fileno()}
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
