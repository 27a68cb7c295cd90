"""Every file of a running box is its user's alone (directories 0700, files and sockets 0600),
whatever the umask it was installed and started with, including files an older release left
readable by others."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devices.ports import free_port
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.filemodes import tighten


@pytest.fixture
def loosest_umask() -> Iterator[None]:
    # The einblick command and everything it starts inherit this: nothing may rely on it.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _einblick(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wider_than_owner(root: Path) -> list[str]:
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = os.lstat(path).st_mode
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_ISLNK(mode) or stat.S_IMODE(mode) != wanted:
            found.append(f"{stat.S_IMODE(mode):04o} {stat.filemode(mode)} {path.relative_to(root)}")
    return found


async def test_every_file_of_a_running_box_is_owner_only(
    tmp_path: Path, loosest_umask: None
) -> None:
    box = tmp_path / "box"
    _einblick(
        "init", str(box), "--port", str(free_port()), "--tls-port", str(free_port()), cwd=tmp_path
    )
    _einblick("device", "add", "--customer", "baeckerei-schmidt", "--name", "Ofen 9", cwd=box)
    # What an older release or an installer's copy may have left: readable by everyone.
    data = box / "data"
    (data / "broker").mkdir(exist_ok=True)
    (data / "broker" / "mosquitto.log").write_text("from 0.1.0\n")
    os.chmod(data / "broker" / "mosquitto.log", 0o644)
    os.chmod(data / "devices.json", 0o644)
    (data / "notes").mkdir()
    os.chmod(data / "notes", 0o755)
    (data / "notes" / "old.txt").write_text("x")
    os.chmod(data / "notes" / "old.txt", 0o666)

    gateway = await start_gateway(box / "einblick.yaml", tmp_path / "gateway.log")
    try:
        # Mosquitto writes its persistence file on its first autosave (every second): wait for
        # it, so its mode is checked too.
        persistence = data / "broker" / "persistence" / "mosquitto.db"
        async with asyncio.timeout(15):
            while not persistence.exists():
                await asyncio.sleep(0.05)
        present = {p.relative_to(box).as_posix() for p in box.rglob("*")}
        for expected in (
            "einblick.yaml",
            "policies/bakery.yaml",
            "data/einblick.db",
            "data/einblick.db-wal",
            "data/einblick.db-shm",
            "data/einblick.lock",
            "data/control.sock",
            "data/devices.json",
            "data/keys/signing.key",
            "data/keys/signing.pub",
            "data/tls/ca.key",
            "data/tls/ca.crt",
            "data/tls/server.key",
            "data/broker/passwd",
            "data/broker/mosquitto.conf",
            "data/broker/mosquitto.pid",
            "data/broker/mosquitto.log",
            "data/broker/persistence/mosquitto.db",
        ):
            assert expected in present, f"{expected} missing: the walk would prove nothing"
        assert _wider_than_owner(box) == []
    finally:
        await stop_gateway(gateway)


def test_tighten_does_not_follow_a_link_out_of_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's")
    os.chmod(outside, 0o644)
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # not through mkdir's mode: the process umask may be narrower
    (data / "link").symlink_to(outside)
    (data / "loose").write_text("x")
    os.chmod(data / "loose", 0o644)
    changed = tighten(data)
    assert sorted(changed) == [data, data / "loose"]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert stat.S_IMODE((data / "loose").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
