"""The managed Mosquitto process (gateway/devices/broker.py), real processes on loopback: found
or named with an install hint (a taken port: tests/gateway/test_registry.py and test_ports.py), a
broken start explained from Mosquitto's own log, a broker a killed gateway left running taken
over rather than doubled, and the supervisor restarting a killed broker but giving up on one that
cannot start."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.devices import broker as broker_module
from gateway.devices.broker import (
    INSTALL_HINT,
    BrokerKilled,
    Mosquitto,
    find_mosquitto,
    wait_for_port,
)
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.errors import BrokerError


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    made = Mosquitto(MosquittoSettings(directory=tmp_path / "broker", port=free_port()))
    made.write_files([])
    yield made
    await made.stop()


def test_mosquitto_is_found_or_an_install_hint_is_given(tmp_path: Path) -> None:
    assert find_mosquitto().name == "mosquitto"
    with pytest.raises(BrokerError, match="does not exist") as caught:
        find_mosquitto(tmp_path / "mosquitto")
    assert "sudo apt-get install mosquitto" in str(caught.value)
    assert "mode: external" in INSTALL_HINT


async def test_start_and_stop_a_real_broker(broker: Mosquitto) -> None:
    await broker.start()
    assert broker.running and broker.pid is not None
    assert (broker.settings.directory / "mosquitto.pid").read_text().strip() == str(broker.pid)
    await wait_for_port("127.0.0.1", broker.settings.port, 5)
    await broker.start()  # already running: nothing happens
    await broker.stop()
    assert not broker.running
    with pytest.raises(BrokerError, match="nothing listens on"):
        await wait_for_port("127.0.0.1", broker.settings.port, 0.2)


async def test_waiting_for_a_port_does_not_connect_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection to the TLS listener would be logged as a refused TLS client (ports.py,
    ``listening``): the wait reads /proc instead, and connects only where /proc shows nothing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        await wait_for_port("127.0.0.1", port, 5)
        with pytest.raises(BlockingIOError):
            server.accept()  # no connection came
        monkeypatch.setattr(broker_module, "listening", lambda host, port: None)  # not Linux
        await wait_for_port("127.0.0.1", port, 5)
        connection, _ = server.accept()  # there, the wait connected
        connection.close()


async def test_waiting_for_an_adopted_broker_that_exits_ends_at_once() -> None:
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # exited and reaped: its pid names no process
    with pytest.raises(BrokerKilled, match=rf"pid {gone.pid}\) exited while it was being taken"):
        async with asyncio.timeout(5):  # not the wait's own 60 s
            await wait_for_port("127.0.0.1", free_port(), 60, adopted=gone.pid)


# A stand-in for Mosquitto that opens its listeners one after the other with a pause between
# (as a real one does while it loads certificates and the CRL for its TLS listener).
SLOW_SECOND_LISTENER = """#!{python}
import pathlib, socket, sys, time
conf = pathlib.Path(sys.argv[2])
ports = [int(l.split()[1]) for l in conf.read_text().splitlines() if l.startswith("listener ")]
held = []
for i, port in enumerate(ports):
    time.sleep(1.0 if i else 0)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    held.append(s)
time.sleep(3600)
"""


async def test_start_waits_for_every_listener_not_only_the_first(tmp_path: Path) -> None:
    fake = tmp_path / "mosquitto"
    fake.write_text(SLOW_SECOND_LISTENER.format(python=sys.executable))
    fake.chmod(0o755)
    unread = tmp_path / "unread.pem"  # the stand-in reads no certificate
    settings = MosquittoSettings(
        directory=tmp_path / "broker",
        port=free_port(),
        tls_port=free_port(),
        ca_file=unread,
        cert_file=unread,
        key_file=unread,
    )
    broker = Mosquitto(settings, binary=fake)
    broker.write_files([])
    assert settings.tls_port is not None
    try:
        await broker.start()
        # One attempt, no retry: a device connecting the moment start() returned is served.
        with socket.create_connection(("127.0.0.1", settings.tls_port), timeout=5):
            pass
    finally:
        await broker.stop()


async def test_a_broken_start_is_explained_from_mosquitto_s_log(broker: Mosquitto) -> None:
    with broker.conf_path.open("a", encoding="utf-8") as conf:
        conf.write("no_such_option 1\n")
    with pytest.raises(BrokerError, match="did not start listening") as caught:
        await broker.start()
    assert "its log says:" in str(caught.value) and "no_such_option" in broker.tail_log(20)
    assert not broker.running


async def test_a_broker_left_running_by_a_killed_gateway_is_taken_over(
    broker: Mosquitto,
) -> None:
    await broker.start()
    left = broker.pid
    # A new gateway process: a new Mosquitto object over the same directory.
    again = Mosquitto(broker.settings)
    await again.start()
    assert again.adopted_pid == left and again.pid == left and again.running
    await again.stop()
    await asyncio.wait_for(broker.process.wait(), 10)  # type: ignore[union-attr]
    assert not again.running and not broker.running


# A process that passes for a Mosquitto an earlier gateway left running (its command line names
# mosquitto and the configuration) and exits at the SIGHUP with which it is taken over.
EXITS_AT_SIGHUP = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
print("ready", flush=True)
time.sleep(60)
"""


async def test_a_left_broker_that_exits_while_taken_over_is_replaced_by_our_own(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "mosquitto"
    script.write_text(EXITS_AT_SIGHUP)
    broker.write_files([])
    left = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "-c", str(broker.conf_path), stdout=asyncio.subprocess.PIPE
    )
    assert left.stdout is not None
    assert await left.stdout.readline() == b"ready\n"  # its SIGHUP handler is in place
    (broker.settings.directory / "mosquitto.pid").write_text(f"{left.pid}\n")
    caplog.set_level(logging.WARNING, logger="gateway.devices.broker")
    try:
        await broker.start()
        assert await asyncio.wait_for(left.wait(), 10) == 0  # it had been taken over: SIGHUP
    finally:
        if left.returncode is None:  # not taken over: it must not outlive the test
            left.kill()
            await left.wait()
    # its stdout is ours and its stderr pytest's: not the one pipe a gateway gives a broker
    assert any(
        f"cannot read the log of the device broker taken over (Mosquitto pid {left.pid}: its "
        "output is not the pipe a gateway gives it)" in r.getMessage()
        for r in caplog.records
    )
    assert broker.adopted_pid is None
    assert broker.process is not None and broker.pid == broker.process.pid != left.pid
    await wait_for_port("127.0.0.1", broker.settings.port, 5, broker.process)


# An earlier gateway: starts the device broker, whose output goes into a pipe of its own, and
# waits to be killed.
EARLIER_GATEWAY = """
import asyncio, sys
from pathlib import Path
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings

async def main() -> None:
    broker = Mosquitto(MosquittoSettings(directory=Path(sys.argv[1]), port=int(sys.argv[2])))
    broker.write_files([])
    await broker.start()
    print(broker.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


# MQTT 3.1.1 CONNECT, clean session, keepalive 60 s, client id "x", no user name.
CONNECT_WITHOUT_USER = bytes.fromhex("100d00044d5154540402003c000178")


async def test_the_log_of_a_broker_taken_over_is_read_again(tmp_path: Path) -> None:
    """The pipe's reading end died with the gateway killed -9; the next one opens it again, so
    lines reach ``on_log`` (the refusals) and the log file as before. What Mosquitto wrote in
    between, with no reader, is lost (it ignores the broken pipe and goes on)."""
    settings = MosquittoSettings(directory=tmp_path / "broker", port=free_port())
    earlier = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EARLIER_GATEWAY, str(settings.directory), str(settings.port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    again = Mosquitto(settings, on_log=lines.extend)
    try:
        assert earlier.stdout is not None
        left = int(await asyncio.wait_for(earlier.stdout.readline(), 30))
        earlier.kill()
        await earlier.wait()
        with socket.create_connection(("127.0.0.1", settings.port), timeout=5) as unread:
            lost = f"127.0.0.1:{unread.getsockname()[1]} "
            # A CONNECT answered (refused: no user) is a fence: Mosquitto has written the line
            # of this connection, into the pipe no one reads, before it sent the CONNACK.
            unread.sendall(CONNECT_WITHOUT_USER)
            assert unread.recv(4) == b"\x20\x02\x00\x05"
        await again.start()
        assert again.adopted_pid == left
        with socket.create_connection(("127.0.0.1", settings.port), timeout=5) as seen:
            read = f"127.0.0.1:{seen.getsockname()[1]} "
        async with asyncio.timeout(10):
            while not any(read in line for line in lines):
                await asyncio.sleep(0.02)
        async with asyncio.timeout(10):  # the same line, written by our reader
            while read not in again.log_path.read_text():
                await asyncio.sleep(0.02)
        assert not any(lost in line for line in lines)
        assert lost not in again.log_path.read_text()
    finally:
        await again.stop()  # the broker taken over
        if earlier.returncode is None:
            earlier.kill()
            await earlier.wait()
        orphan = Mosquitto(settings)._orphan()  # one not taken over must not outlive the test
        if orphan is not None:
            os.kill(orphan, signal.SIGTERM)


async def test_the_supervisor_restarts_a_killed_broker(broker: Mosquitto) -> None:
    await broker.start()
    first = broker.pid
    async with asyncio.TaskGroup() as tasks:
        supervising = tasks.create_task(broker.supervise(), name="broker-supervisor")
        broker.kill()
        async with asyncio.timeout(15):  # backoff starts at 0.5 s
            while broker.restarts == 0 or not broker.running:
                await asyncio.sleep(0.05)
        assert broker.pid != first
        await wait_for_port("127.0.0.1", broker.settings.port, 10)
        supervising.cancel()


async def test_the_supervisor_gives_up_on_a_broker_that_cannot_start(broker: Mosquitto) -> None:
    with broker.conf_path.open("a", encoding="utf-8") as conf:
        conf.write("no_such_option 1\n")
    with pytest.raises(BrokerError, match="could not be started 2 times in a row; giving up"):
        await asyncio.wait_for(broker.supervise(max_failures=2), 30)
