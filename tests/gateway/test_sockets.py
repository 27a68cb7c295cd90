"""The link's socket helpers on a real socket pair: bytes waiting, and a close that waits for
the other side to have read everything (``Linger``)."""

from __future__ import annotations

import asyncio
import socket

from gateway.messages.sockets import Linger, unread


def test_unread_sees_bytes_waiting_and_nothing_else() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not unread(ours)
        theirs.sendall(b"x")
        assert unread(ours)
        ours.recv(1)
        assert not unread(ours)
    finally:
        ours.close()
        theirs.close()
    assert not unread(ours)  # a closed socket has nothing to read, and no error


async def test_linger_closes_only_once_the_other_side_has_read_and_closed() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.sendall(b"acks and DISCONNECT")
    linger = Linger(loop)
    linger.start(ours)
    assert linger.waiting and not linger.ended.done()
    assert ours.fileno() != -1  # half-closed, not closed: the peer may still be reading
    theirs.setblocking(False)
    got = await loop.sock_recv(theirs, 100)
    assert got == b"acks and DISCONNECT"
    assert await loop.sock_recv(theirs, 100) == b""  # our FIN: we write nothing more
    theirs.close()  # the broker closes its side once it has read our DISCONNECT
    async with asyncio.timeout(5):
        await linger.ended
    assert not linger.waiting and ours.fileno() == -1


async def test_ending_the_wait_early_closes_the_socket() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    linger = Linger(asyncio.get_running_loop())
    linger.start(ours)
    linger.end()  # close() gave up after its 2 s
    assert linger.ended.done() and ours.fileno() == -1
    theirs.close()
