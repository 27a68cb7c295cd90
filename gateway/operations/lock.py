"""One gateway per data directory: an exclusive lock held for the life of ``einblick run``.

Two gateways on one data directory would both write the log (two writers of one hash chain),
both hold the broker session under one client id and kick each other off it, and the second
would delete the first's control socket, so ``status``, ``consent`` and ``device add`` report the
running gateway as down. ``fcntl.flock`` on ``<data_dir>/einblick.lock`` prevents that: the
kernel releases the lock when the process ends however it ends (kill -9 included), so a stale
lock file never blocks a restart. The file says who holds it (pid, since when, instance), so the
refusal can name the running gateway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.errors import GatewayError

__all__ = ["DirectoryLock", "DirectoryLocked"]

LOCK_NAME = "einblick.lock"


class DirectoryLocked(GatewayError):
    """Another gateway holds the data directory; ``holder`` is what its lock file says."""

    def __init__(self, path: Path, holder: dict[str, object]) -> None:
        self.path = path
        self.holder = holder
        pid = holder.get("pid", "unknown")
        since = holder.get("since")
        when = (
            datetime.fromtimestamp(float(since), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if isinstance(since, int | float)
            else "an unknown time"
        )
        instance = holder.get("instance", "unknown")
        super().__init__(
            f"{path}: another Einblick gateway is running on this data directory "
            f"(pid {pid}, instance {instance}, running since {when}); "
            "stop it first (systemctl stop einblick, or kill that pid), "
            "or give this one its own data_dir"
        )


class DirectoryLock:
    """``acquire`` takes the lock or raises DirectoryLocked; ``release`` (or exit) drops it."""

    def __init__(self, directory: Path, instance: str) -> None:
        self.path = directory / LOCK_NAME
        self.instance = instance
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not O_TRUNC: the holder's details must survive until we know we hold the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DirectoryLocked(self.path, holder) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            orjson.dumps({"pid": os.getpid(), "since": time.time(), "instance": self.instance}),
            0,
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # The file stays (deleting it would race with a gateway starting now); the lock goes.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = orjson.loads(data)
    except (OSError, orjson.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}
