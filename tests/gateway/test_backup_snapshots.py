"""Backup snapshots (gateway/operations/backup_snapshots.py): each copy gets a fresh name in
the data directory, and every copy a backup left behind is removed at start, with a warning
naming it, while other files stay; the real gateway does it before it opens anything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from gateway.devices.ports import free_port
from gateway.operations.backup_snapshots import (
    SNAPSHOT_GLOB,
    new_snapshot_path,
    remove_stale_snapshots,
)
from gateway.operations.scaffold import InitOptions, init_directory


def test_each_snapshot_gets_a_fresh_name_in_the_data_directory(tmp_path: Path) -> None:
    names = {new_snapshot_path(tmp_path) for _ in range(50)}
    assert len(names) == 50
    assert all(p.parent == tmp_path and p.match(SNAPSHOT_GLOB) for p in names)


def test_left_behind_copies_are_removed_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = [new_snapshot_path(tmp_path) for _ in range(2)]
    for path in stale:
        path.write_bytes(b"SQLite format 3\x00 every customer's content")
    kept = [tmp_path / "einblick.db", tmp_path / "backup-snapshot.txt"]
    for path in kept:
        path.write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="gateway.operations.backup_snapshots"):
        assert remove_stale_snapshots(tmp_path) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    for path in stale:
        assert f"removing a backup snapshot left behind: {path}" in caplog.text
    assert remove_stale_snapshots(tmp_path) == []


async def test_the_gateway_removes_them_when_it_starts(tmp_path: Path) -> None:
    config = load_config(
        init_directory(InitOptions(directory=tmp_path / "edge", broker_port=free_port()))
    )
    stale = new_snapshot_path(config.data_path)
    stale.write_bytes(b"left by a killed backup")
    gateway = Gateway(config)
    task = asyncio.get_running_loop().create_task(gateway.run(), name="gateway-under-test")
    try:
        async with asyncio.timeout(30):
            ready = asyncio.get_running_loop().create_task(gateway.ready.wait(), name="ready")
            done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            assert ready in done, task.exception()
        assert not stale.exists()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
