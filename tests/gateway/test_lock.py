"""One gateway per data directory: the lock, who holds it, and that a stop leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from gateway.operations.lock import LOCK_NAME, DirectoryLock, DirectoryLocked


def test_a_second_gateway_is_told_who_holds_the_directory(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path, "box-a"):
        holder = orjson.loads((tmp_path / LOCK_NAME).read_bytes())
        assert holder["pid"] == os.getpid() and holder["instance"] == "box-a"
        with pytest.raises(DirectoryLocked) as caught:
            DirectoryLock(tmp_path, "box-b").acquire()
    refusal = caught.value
    assert refusal.holder["instance"] == "box-a"
    assert f"pid {os.getpid()}, instance box-a, running since" in str(refusal)
    assert "stop it first" in str(refusal)
    assert oct((tmp_path / LOCK_NAME).stat().st_mode & 0o777) == oct(0o600)


def test_a_released_lock_is_free_and_says_no_holder(tmp_path: Path) -> None:
    lock = DirectoryLock(tmp_path, "box-a")
    lock.acquire()
    lock.release()
    lock.release()  # twice is harmless
    assert (tmp_path / LOCK_NAME).read_bytes() == b""
    with DirectoryLock(tmp_path, "box-b"):
        pass


def test_an_unreadable_holder_is_still_a_refusal(tmp_path: Path) -> None:
    assert DirectoryLocked(tmp_path / LOCK_NAME, {}).holder == {}
    assert "pid unknown, instance unknown, running since an unknown time" in str(
        DirectoryLocked(tmp_path / LOCK_NAME, {})
    )
