"""The release's retry (gateway/operations/release_retry.py), against a stand-in broker that
answers late or never: a late UNSUBACK is asked for again after a backoff delay instead of
undoing the move; a broker that never answers, or a session that is not there, is refused after
the bound with a message that says what to do; an answer awaited longer than the bound is cut
short at it; the session the broker confirmed on is the one returned (for the fence)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection
from gateway.operations.handover_model import HandoverError
from gateway.operations.release_retry import let_go
from tests.gateway.test_mqtt import _stand_in_broker, read_packet

MOVED = "werk-a"


async def _broker_dropping_late(late: float | None) -> tuple[asyncio.Server, int, list[float]]:
    """A stand-in broker: it accepts the CONNECT, and answers the first UNSUBSCRIBE after
    ``late`` seconds and every later one at once; ``late=None``: it never answers one. The
    list holds the time each UNSUBSCRIBE arrived."""
    asked: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_packet(reader)  # CONNECT
            writer.write(b"\x20\x02\x00\x00")
            while True:
                kind, body = await read_packet(reader)
                if kind >> 4 != 10:  # UNSUBSCRIBE
                    continue
                asked.append(time.monotonic())
                if late is None:
                    continue
                if len(asked) == 1:
                    await asyncio.sleep(late)
                writer.write(b"\xb0\x02" + body[:2])  # UNSUBACK for its packet id
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], asked


async def _letting_go(late: float | None, within: float) -> list[float]:
    server, port, asked = await _broker_dropping_late(late)
    session = MqttConnection(Endpoint("127.0.0.1", port, "gw-hall-a"))
    try:
        await session.open()
        await let_go(
            lambda: session,
            lambda s: s.unsubscribe(f"devices/{MOVED}/#", timeout=0.3),
            f"handover of {MOVED!r}",
            within=within,
        )
    finally:
        await session.close()
        server.close()
    return asked


async def test_a_release_the_broker_confirms_late_is_asked_again_not_refused() -> None:
    """The broker misses the answer's time once (as under a failover's load): the release asks
    again after a backoff delay and goes on, instead of undoing the move."""
    asked = await _letting_go(late=0.6, within=10.0)
    assert len(asked) == 2
    assert asked[1] - asked[0] >= 0.3 + 0.5  # the answer's wait, then the first backoff step


async def test_a_release_the_broker_never_confirms_is_refused_after_the_bound() -> None:
    started = time.monotonic()
    with pytest.raises(HandoverError) as refused:
        await _letting_go(late=None, within=1.0)
    took = time.monotonic() - started
    message = str(refused.value)
    assert message.startswith(f"handover of {MOVED!r}: the device broker did not confirm")
    assert "over 1 s" in message and "did not confirm dropping the subscription" in message
    assert "Nothing moved and the customer stays on this instance" in message
    assert "run the same command again" in message
    assert 1.0 <= took < 1.0 + 0.3 + 1.0  # the bound, at most one more answer's wait beyond it
    assert int(message.split(" asked ")[1].split(maxsplit=1)[0]) >= 2


async def test_a_release_waits_for_a_reconnecting_session_within_the_bound() -> None:
    with pytest.raises(HandoverError, match="not connected to the device broker"):
        await let_go(lambda: None, _never_applied, "handover of 'werk-a'", within=0.6)


async def _never_applied(session: MqttConnection) -> None:
    raise AssertionError("applied on a session that is not there")


async def test_an_answer_awaited_longer_than_the_bound_is_cut_short_at_it() -> None:
    """One UNSUBSCRIBE may wait 30 s for its answer: the release still ends at its bound, so
    it never acts after the command that asked for it stopped waiting."""
    server, port, asked = await _broker_dropping_late(None)
    session = MqttConnection(Endpoint("127.0.0.1", port, "gw-hall-a"))
    started = time.monotonic()
    try:
        await session.open()
        with pytest.raises(HandoverError, match=r"asked 1 times .*no answer in the time left"):
            await let_go(
                lambda: session,
                lambda s: s.unsubscribe(f"devices/{MOVED}/#", timeout=30.0),
                f"handover of {MOVED!r}",
                within=0.8,
            )
    finally:
        await session.close()
        server.close()
    assert len(asked) == 1
    assert time.monotonic() - started < 0.8 + 1.0


async def test_the_session_returned_is_the_one_the_broker_confirmed_on() -> None:
    """The session open when the release began misses its answer and a reconnect brings a new
    one: the release returns the new one, where the fence must go."""
    server, port, asked = await _broker_dropping_late(0.6)
    first = MqttConnection(Endpoint("127.0.0.1", port, "gw-hall-a"))
    second = MqttConnection(Endpoint("127.0.0.1", port, "gw-hall-a-again"))
    sessions = iter([first, second])
    current = next(sessions)

    def connection() -> MqttConnection:
        nonlocal current
        given = current
        current = next(sessions, current)  # the next ask finds the reconnected session
        return given

    try:
        await first.open()
        await second.open()
        confirmed = await let_go(
            connection,
            lambda s: s.unsubscribe(f"devices/{MOVED}/#", timeout=0.3),
            f"handover of {MOVED!r}",
            within=10.0,
        )
    finally:
        await first.close()
        await second.close()
        server.close()
    assert confirmed is second
    assert len(asked) == 2


async def test_a_subscription_the_broker_refuses_is_refused_at_once_not_asked_for_a_minute() -> (
    None
):
    """SUBACK 0x80 (the broker's ACL says no) is an answer, not a miss: asking again for the
    whole bound would get the same one."""
    server, port = await _stand_in_broker("refusing")
    session = MqttConnection(Endpoint("127.0.0.1", port, "gw-hall-b"))
    started = time.monotonic()
    try:
        await session.open()
        with pytest.raises(HandoverError) as refused:
            await let_go(
                lambda: session,
                lambda s: s.subscribe(f"devices/{MOVED}/#", 1),
                f"handover of {MOVED!r}",
                within=60.0,
            )
    finally:
        await session.close()
        server.close()
    assert time.monotonic() - started < 10  # not the minute's retries (the first backoff: 0.5 s)
    message = str(refused.value)
    assert f"the broker refused a subscription to 'devices/{MOVED}/#'" in message
    assert "Check the broker's ACL for this instance's user" in message
