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

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port = port
        self.username = username
        self.password = password
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> int:
        """CONNECT; returns the CONNACK return code (0: accepted)."""
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = (
            _field(b"MQTT")
            + bytes([4, 0xC2])  # level 4; flags: username, password, clean session
            + struct.pack("!H", 30)
            + _field(f"raw-{self.username}".encode())
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

    async def publish(self, topic: bytes, payload: bytes, *, qos: int = 1) -> None:
        variable = _field(topic) + (b"\x00\x01" if qos else b"")
        body = variable + payload
        header = bytes([0x30 | (qos << 1)]) + remaining_length(len(body))
        await self.send(header + body)

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
