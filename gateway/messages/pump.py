"""The socket pump of the paho-on-asyncio adapter (``gateway.messages.mqtt``).

paho is driven without its thread: its socket callbacks hand the socket to a ``SocketPump``,
which registers it with the event loop (``add_reader`` → ``loop_read``), writes what paho queued
at the end of the loop's turn (only a full socket buffer makes it wait for ``add_writer`` →
``loop_write``) and calls ``loop_misc`` every second for keepalives -- the design of paho's own
``examples/loop_asyncio.py`` and of aiomqtt. Every paho call stays on the loop thread.

The pump knows nothing of MQTT sessions: it asks ``is_closed`` before touching the socket and
reports a failed read, write or keepalive to ``fail`` with the reason, once per failure.

``WritesHeld``: code that queues packets on several connections at once (the pipeline after a
commit: the devices' PUBACKs and the rows' upstream PUBLISHes) holds the writes and sends them
when it is done, in the same turn, instead of one more turn of the loop that runs the flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from gateway.messages.paho_client import LoopClient
from gateway.messages.sockets import unread

__all__ = ["READ_BURST", "RETRY_READ_SECONDS", "SocketPump", "WritesHeld"]

log = logging.getLogger(__name__)

# Packets one turn of the loop reads from one socket before it lets others run.
READ_BURST = 256
# After a read whose callback raised, the packets left in the client's buffer are read then.
RETRY_READ_SECONDS = 0.1

_OK = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)


class _Held(threading.local):
    # Pumps with packets queued while writes are held on this thread, or None: not held.
    pumps: list[tuple[SocketPump, socket.socket]] | None = None


_held = _Held()


class WritesHeld:
    """``with WritesHeld():`` packets queued inside go out as it ends, each socket's in one
    ``send`` (module text). Nested, the outermost sends. The hold is the thread's, not a
    task's: nothing may await inside it, or other tasks' writes would wait for it across turns
    of the loop (the pipeline's block after a commit is synchronous)."""

    __slots__ = ("_outer",)

    def __enter__(self) -> None:
        self._outer = _held.pumps is None
        if self._outer:
            _held.pumps = []

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self._outer:
            return
        pumps, _held.pumps = _held.pumps or [], None
        for pump, sock in pumps:
            try:
                pump.flush(sock)
            except Exception:  # as the loop reports a failing callback, and goes on
                log.exception("writing to an MQTT connection failed")


class SocketPump:
    """Moves bytes between one paho client and its socket on the running loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: LoopClient,
        is_closed: Callable[[], bool],
        fail: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._client = client
        self._is_closed = is_closed
        self._fail = fail
        self.sock: socket.socket | None = None
        self.reading = False
        # How often reading was paused: a window of a wait for the broker (MqttConnection._answer)
        # in which reading was paused is not its silence, even if the pause ended just before the
        # window did and nothing was read yet. A detach is not a pause: the connection is gone.
        self.pauses = 0
        self._writing = False  # the socket is registered with the loop for writability
        self._flush_pending = False
        self._loop_thread = threading.get_ident()
        self._misc: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None  # the read after one that raised
        client.on_socket_open = self._socket_open
        client.on_socket_register_write = self._socket_register_write
        client.on_socket_unregister_write = self._socket_unregister_write

    def _socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho connects in a thread (``MqttConnection.open``): attach on the loop's own
        self._loop.call_soon_threadsafe(self._attach, sock)

    def _attach(self, sock: socket.socket) -> None:
        if self._is_closed():
            # The session ended while paho was still connecting in its thread (a timeout, a
            # cancelled open): nobody will read this socket, so the broker hears the end now.
            with contextlib.suppress(OSError):
                sock.close()
            return
        self.sock = sock
        # paho leaves Nagle's algorithm on: each small PUBLISH or PUBACK would wait for the TCP
        # ACK of the one before, and delayed ACKs make that up to 40 ms per message.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(sock, self.read)
        self.reading = True
        self._misc = self._loop.call_later(1.0, self._tick)

    def pause_reading(self) -> None:
        if self.sock is not None and self.reading:
            self._loop.remove_reader(self.sock)
            self.reading = False
            self.pauses += 1

    def resume_reading(self) -> None:
        if self.sock is not None and not self.reading and not self._is_closed():
            self._loop.add_reader(self.sock, self.read)
            self.reading = True
            if self._client.buffered:  # read before the pause: epoll will not report them
                self._loop.call_soon(self._read_buffered)

    def _socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._loop.is_closed():
            return
        if threading.get_ident() != self._loop_thread:  # CONNECT, queued by connect() in a thread
            self._loop.call_soon_threadsafe(self._add_writer, sock)
        elif not self._flush_pending:
            # Publishes and acks queued during this turn of the loop go out together at its end,
            # straight to the socket. Waiting for epoll to report the socket writable would cost
            # two epoll_ctl calls per turn and a whole extra turn of latency, for a socket that is
            # nearly always writable.
            self._flush_pending = True
            held = _held.pumps
            if held is not None:
                held.append((self, sock))
            else:
                self._loop.call_soon(self.flush, sock)

    def flush(self, sock: socket.socket) -> None:
        """Write what paho queued on ``sock`` (through TLS, after reading what waits: below)."""
        self._flush_pending = False
        if self._is_closed() or sock.fileno() == -1:
            return
        client = self._client
        try:
            if self.reading and not client.salvages and (client.buffered or unread(sock)):
                # Through TLS, read first: if the broker has died, its last packets are still
                # in the socket, and the write below failing would close it with them unread. A
                # plain socket's client reads them when the write fails (``LoopClient.salvages``),
                # so what arrived since the loop looked waits for its next look, paced. A read
                # that raises must not skip the write, nor the wait for a full socket buffer to
                # drain: paho asks for a flush only once per queued write.
                try:
                    self.read()
                finally:
                    if not self._is_closed():
                        self._write()
            else:
                self._write()
        finally:
            if client.want_write():  # the socket buffer is full: wait until it drains
                self._add_writer(sock)

    def _add_writer(self, sock: socket.socket) -> None:
        if not self._is_closed() and sock.fileno() != -1 and not self._writing:
            self._loop.add_writer(sock, self._write)
            self._writing = True

    def _socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._writing:
            self._writing = False
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)

    def read(self) -> None:
        # paho handles one packet per loop_read. Take everything already waiting, in the
        # client's buffer or in the socket, up to a bound so one busy socket cannot starve the
        # loop. (What a dead broker left unread when a write fails is read then: through a
        # plain socket by the client's salvage, through TLS by the flush before it writes.)
        # A recv that took less than it asked for emptied the socket (``LoopClient.drained``):
        # then asking the kernel whether more waits would be one ioctl per packet for nothing;
        # bytes that arrive after it wake the loop's epoll again.
        sock = self.sock
        client = self._client
        try:
            rc = client.loop_read()
            for _ in range(READ_BURST):
                if not (
                    rc == MQTTErrorCode.MQTT_ERR_SUCCESS
                    and self.reading
                    and sock is not None
                    and self.sock is sock
                    and (client.buffered or (not client.drained and unread(sock)))
                ):
                    break
                rc = client.loop_read()
        except BaseException:
            if self.reading and client.buffered and self._retry is None:
                # A callback raised (the loop reports it): the packets already read wait in
                # the client's buffer, where epoll cannot see them. Read on a little later,
                # once however often it raises meanwhile: at once, a failure that recurs would
                # keep the loop spinning.
                self._retry = self._loop.call_later(RETRY_READ_SECONDS, self._read_buffered)
            raise
        if rc not in _OK:
            self._fail(f"read failed: {paho.error_string(rc)}")
        elif self.reading and client.buffered:
            # Packets left in the client's buffer (the bound above): epoll cannot see them, so
            # the next turn reads on without waiting for the socket.
            self._loop.call_soon(self._read_buffered)

    def _read_buffered(self) -> None:
        if self._retry is not None:
            # Also reached at once (a resumed reading, a read on): a retry still pending is
            # this read's, or a read that raises again would add a timer each time.
            self._retry.cancel()
            self._retry = None
        if self.reading and not self._is_closed():
            self.read()

    def _write(self) -> None:
        rc = self._client.loop_write()
        if rc not in _OK:
            self._fail(f"write failed: {paho.error_string(rc)}")

    def _tick(self) -> None:
        if self._is_closed():
            return
        rc = self._client.loop_misc()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._fail(f"keepalive failed: {paho.error_string(rc)}")
            return
        self._misc = self._loop.call_later(1.0, self._tick)

    def detach(self, sock: Any) -> None:
        """Stop watching ``sock`` (it is closed or handed on); the pump holds no socket after."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)
        self.reading = False
        self._writing = False
        self.sock = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def stop(self) -> socket.socket | None:
        """The session ended: no more keepalives; returns the socket still attached, detached."""
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        sock = self.sock
        if sock is not None:
            self.detach(sock)
        return sock
