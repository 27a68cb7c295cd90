"""A few MQTT 3.1.1 packets written by hand, for what a well-behaved client library refuses to
send: wildcards and NUL in a topic name, invalid UTF-8, lengths that lie, oversized packets."""

from __future__ import annotations

import asyncio
import contextlib
import struct

__all__ = ["RawClient", "remaining_length"]


def remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _field(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


class RawClient:
    """One TCP connection speaking just enough MQTT to CONNECT and PUBLISH anything."""

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.port = port
        self.username = username
        self.password = password
        self.client_id = client_id if client_id is not None else f"raw-{username}"
        self.clean_session = clean_session
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> int:
        """CONNECT; returns the CONNACK return code (0: accepted)."""
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = (
            _field(b"MQTT")
            # level 4; flags: username, password, and clean session unless asked not to
            + bytes([4, 0xC0 | (0x02 if self.clean_session else 0)])
            + struct.pack("!H", 30)
            + _field(self.client_id.encode())
            + _field(self.username.encode())
            + _field(self.password.encode())
        )
        self.writer.write(b"\x10" + remaining_length(len(body)) + body)
        await self.writer.drain()
        async with asyncio.timeout(5):
            connack = await self.reader.readexactly(4)
        return connack[3]

    async def send(self, packet: bytes) -> None:
        assert self.writer is not None
        self.writer.write(packet)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def subscribe(self, topic: bytes, mid: int, *, qos: int = 1) -> None:
        body = struct.pack("!H", mid) + _field(topic) + bytes([qos])
        await self.send(b"\x82" + remaining_length(len(body)) + body)

    async def publish(self, topic: bytes, payload: bytes, *, qos: int = 1) -> None:
        variable = _field(topic) + (b"\x00\x01" if qos else b"")
        body = variable + payload
        header = bytes([0x30 | (qos << 1)]) + remaining_length(len(body))
        await self.send(header + body)

    async def ping_fence(self, timeout: float = 10.0) -> bytes:
        """Send PINGREQ and return every byte the broker sent until its PINGRESP: what it had
        written to this connection before (PUBACKs, and PUBLISHes for a subscription).

        Reads whole packets, so a payload containing the PINGRESP bytes is not mistaken for it."""
        assert self.reader is not None
        await self.send(b"\xc0\x00")
        got = bytearray()
        async with asyncio.timeout(timeout):
            while True:
                header = await self.reader.readexactly(1)
                length, shift = 0, 0
                while True:
                    byte = (await self.reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                packet = header + await self.reader.readexactly(length)
                if packet == b"\xd0":
                    return bytes(got)
                got += header + remaining_length(length) + packet[1:]

    async def closed_by_broker(self, timeout: float = 2.0) -> bool:
        """True if the broker hung up on us within ``timeout`` (what it does on a bad packet)."""
        assert self.reader is not None
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(4096):
                    pass
            return True
        except (TimeoutError, ConnectionError):
            return False

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
