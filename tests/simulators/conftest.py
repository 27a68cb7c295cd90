"""A real Mosquitto on a free loopback port, one per test, killed at teardown; and a collector of
what a subscriber receives, waited on by condition."""

from __future__ import annotations

import getpass
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.devices.ports import free_port

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


def _log_text(log: Path) -> str:
    return log.read_text() if log.exists() else "(no log)"


def _config(port: int, log: Path, *extra: str) -> str:
    # Run as root, Mosquitto would switch to user "mosquitto", who cannot read pytest's tmp dirs.
    lines = [f"listener {port} 127.0.0.1", f"user {getpass.getuser()}", "persistence false"]
    return "\n".join([*lines, f"log_dest file {log}", *extra, ""])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {_log_text(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within 10 s: {_log_text(log)}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    log = tmp_path / "mosquitto.log"
    conf.write_text(_config(port, log, "allow_anonymous true"))
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
    port = free_port()
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["/usr/bin/mosquitto_passwd", "-b", "-c", str(passwd), "sim", "geheim"],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    conf = tmp_path / "mosquitto.conf"
    log = tmp_path / "mosquitto.log"
    conf.write_text(_config(port, log, "allow_anonymous false", f"password_file {passwd}"))
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield Broker("127.0.0.1", port), "sim", "geheim"
    finally:
        proc.kill()
        proc.wait(timeout=10)


class Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= n, timeout)
