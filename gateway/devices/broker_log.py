"""Mosquitto's log: drained from its output by a thread, bounded on disk, owner-only.

Mosquitto never rotates a log file, and whoever connects chooses the client ids and topics it
writes; so its output goes through a pipe into ``BoundedLog`` (at most twice its size on disk,
lines cut at 4 KiB), without the per-message debug chatter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["BoundedLog", "drain_log", "rotated"]


# Debug-level lines Mosquitto writes for every message; everything else goes to the log file.
_CHATTER = (
    b"Received PUBLISH",
    b"Sending PUBLISH",
    b"Received PUBACK",
    b"Sending PUBACK",
    b"Received PUBREC",
    b"Sending PUBREC",
    b"Received PUBREL",
    b"Sending PUBREL",
    b"Received PUBCOMP",
    b"Sending PUBCOMP",
    b"Received PINGREQ",
    b"Sending PINGRESP",
    b"No will message specified.",
)


def drain_log(
    fd: int,
    log_file: BoundedLog,
    on_log: Callable[[list[str]], None] | None,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Thread: read Mosquitto's output until it exits; keep the log file free of chatter."""
    rest = b""
    try:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                kept = [line for line in lines if not line.partition(b": ")[2].startswith(_CHATTER)]
                if kept:
                    log_file.write(kept)
                    if on_log is not None:
                        text = [line.decode("utf-8", errors="replace") for line in kept]
                        with contextlib.suppress(RuntimeError):  # the loop has closed
                            loop.call_soon_threadsafe(on_log, text)
    finally:
        if rest:
            log_file.write([rest])
        log_file.close()


def rotated(path: Path) -> Path:
    """Where ``BoundedLog`` moves a full log: ``mosquitto.log.1``."""
    return path.with_name(path.name + ".1")


class BoundedLog:
    """An owner-only append-only log file rotated at ``max_bytes`` to one older generation.

    Disk use stays under ``2 × max_bytes`` whatever arrives. Lines longer than ``MAX_LINE`` are
    cut: a client id or topic in a line is chosen by whoever connects, up to 64 KiB."""

    MAX_LINE = 4096

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max(max_bytes, 2 * self.MAX_LINE)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # a log left by an older release was world-readable
        return fd

    def write(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            cut = len(line) - self.MAX_LINE
            data = (line[: self.MAX_LINE] + b" [%d bytes cut]" % cut if cut > 0 else line) + b"\n"
            if self._size + len(data) > self.max_bytes:
                self._rotate()
            os.write(self._fd, data)
            self._size += len(data)

    def _rotate(self) -> None:
        # Two writers on one path for a moment (a broker taken over that exits while its
        # successor starts, a restart): if the file is no longer ours, the other one has rotated
        # it, and renaming again would replace the generation just moved, lines and all.
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.replace(self.path, rotated(self.path))
        os.close(self._fd)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
