"""Mosquitto's log stays bounded and owner-only under a flood of connection attempts, and every
refusal in it still reaches the refusal counts (gateway/devices/refusals.py)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import AclRule, MosquittoSettings, hash_password
from gateway.devices.broker_log import BoundedLog, rotated
from gateway.devices.ports import free_port
from gateway.devices.refusals import RefusalBook
from tests.faults.raw import RawClient

CAP = 16 * 1024
ATTEMPTS = 600  # each refused login writes ~150 bytes: several times the cap


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_flood_of_refused_logins_keeps_the_log_under_its_cap_and_is_counted(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "broker"
    directory.mkdir()
    # A log left world-readable by an older release is tightened when the broker starts.
    (directory / "mosquitto.log").write_bytes(b"old line\n")
    os.chmod(directory / "mosquitto.log", 0o644)
    book = RefusalBook()
    seen: list[str] = []

    def on_log(lines: list[str]) -> None:
        seen.extend(lines)
        book.feed(lines, 0.0)

    broker = Mosquitto(
        MosquittoSettings(directory=directory, port=free_port(), log_max_bytes=CAP),
        on_log=on_log,
    )
    broker.write_files([AclRule("site.dev", hash_password("right"), write=("site/dev/#",))])
    await broker.start()
    try:
        assert _mode(directory / "mosquitto.log") == 0o600

        async def attempt(i: int) -> int:
            client = RawClient(broker.settings.port, "site.dev", "wrong", client_id=f"c{i}")
            try:
                return await client.connect()
            finally:
                await client.close()

        for start in range(0, ATTEMPTS, 50):
            codes = await asyncio.gather(*(attempt(i) for i in range(start, start + 50)))
            assert set(codes) == {5}  # not authorised
        async with asyncio.timeout(20):
            while book.totals["bad_credentials"] < ATTEMPTS:
                await asyncio.sleep(0.02)
        assert book.totals["bad_credentials"] == ATTEMPTS
        written = sum(len(line) + 1 for line in seen)
        assert written > 3 * CAP  # without rotation the file would be this big
        log = directory / "mosquitto.log"
        older = directory / "mosquitto.log.1"
        assert log.stat().st_size <= CAP
        assert older.stat().st_size <= CAP
        assert _mode(log) == 0o600
        assert _mode(older) == 0o600
        assert "not authorised" in broker.tail_log()
    finally:
        await broker.stop()


def test_a_line_longer_than_the_limit_is_cut_and_says_so(tmp_path: Path) -> None:
    log = BoundedLog(tmp_path / "x.log", CAP)
    log.write([b"a" * 10_000, b"short"])
    log.close()
    lines = (tmp_path / "x.log").read_bytes().split(b"\n")
    assert lines[0] == b"a" * BoundedLog.MAX_LINE + b" [%d bytes cut]" % (
        10_000 - BoundedLog.MAX_LINE
    )
    assert lines[1] == b"short"


def test_two_writers_on_one_path_rotate_it_once_and_lose_no_line(tmp_path: Path) -> None:
    """A broker taken over and its successor may write one path for a moment: the second to
    reach its cap finds the file rotated already and must not rotate it again (which would
    replace the generation just moved, with the first writer's lines)."""
    path = tmp_path / "mosquitto.log"
    line = b"x" * 1000
    first, second = BoundedLog(path, CAP), BoundedLog(path, CAP)
    first.write([b"first %d " % i + line for i in range(16)])  # just under its cap
    second.write([b"second %d " % i + line for i in range(5)])
    first.write([b"first rotates " + line])  # at its cap: moves the file to .1
    second.write([b"second %d " % i + line for i in range(5, 17)])  # reaches its cap too
    first.close()
    second.close()
    older, newer = rotated(path).read_bytes(), path.read_bytes()
    assert older.startswith(b"first 0 ") and older.count(b"first ") == 16
    assert newer.startswith(b"first rotates ")
    both = older + newer
    assert all(b"second %d " % i in both for i in range(17))  # not one line lost
    assert len(newer) <= CAP
