"""A real Mosquitto on a free loopback port, one per test, killed at teardown."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within 10 s: {log.read_text()}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    log = tmp_path / "mosquitto.log"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file {log}\n"
    )
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield Broker("127.0.0.1", port)
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[tuple[Broker, str, str]]:
    """A broker that only accepts user ``sim`` with password ``geheim``."""
    port = _free_port()
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["/usr/bin/mosquitto_passwd", "-b", "-c", str(passwd), "sim", "geheim"],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    conf = tmp_path / "mosquitto.conf"
    log = tmp_path / "mosquitto.log"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
        f"persistence false\nlog_dest file {log}\n"
    )
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield Broker("127.0.0.1", port), "sim", "geheim"
    finally:
        proc.kill()
        proc.wait(timeout=10)
