"""The managed Mosquitto process (gateway/devices/broker.py), real processes on loopback: found
or named with an install hint, a taken port named with its holder before anything starts, a
broken start explained from Mosquitto's own log, a broker a killed gateway left running taken
over rather than doubled, and the supervisor restarting a killed broker but giving up on one that
cannot start."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.devices import broker as broker_module
from gateway.devices.broker import (
    INSTALL_HINT,
    PICK_FROM,
    Mosquitto,
    check_port_free,
    find_mosquitto,
    free_port,
    port_holder,
    wait_for_port,
)
from gateway.devices.broker_files import MosquittoSettings
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


@pytest.fixture
def default_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """The kernel's range for outgoing connections as Linux sets it by default, whatever this
    host has (the real one decides the real connections' ports)."""
    path = tmp_path / "ip_local_port_range"
    path.write_text("32768\t60999\n")
    monkeypatch.setattr(broker_module, "_EPHEMERAL_RANGE", path)
    return 32768, 60999


def test_a_free_port_is_picked_below_the_range_outgoing_connections_take(
    default_range: tuple[int, int],
) -> None:
    ports = {free_port() for _ in range(20)}
    assert all(PICK_FROM <= port < default_range[0] for port in ports), sorted(ports)
    assert len(ports) > 1  # picked at random: parallel callers rarely meet
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # and free


def test_a_range_that_starts_low_leaves_the_pick_to_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low_range = tmp_path / "ip_local_port_range"
    low_range.write_text("10500\t60999\n")
    monkeypatch.setattr(broker_module, "_EPHEMERAL_RANGE", low_range)
    picked: list[tuple[int, int]] = []

    def randrange(start: int, stop: int) -> int:
        picked.append((start, stop))
        return start

    monkeypatch.setattr(broker_module.random, "randrange", randrange)  # type: ignore[attr-defined]
    port = free_port()
    assert not picked  # too few ports below 10500 to pick from
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def _kernel_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
    return int(low), int(high)


def test_a_port_an_outgoing_connection_holds_is_named_as_that_connection() -> None:
    """The bind of a listener fails on a port a connection has as its local end: the message
    names that connection and where such ports come from, not 'another user'."""
    name = Path("/proc/self/comm").read_text().strip()
    low, high = _kernel_range()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            port = client.getsockname()[1]
            holder = port_holder(port)
            assert holder is not None
            assert holder.who == f"the local end of an outgoing connection of {name} (pid " + (
                f"{os.getpid()})"
            )
            with pytest.raises(BrokerError) as caught:
                check_port_free("127.0.0.1", port)
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is in use by the local end of an outgoing connection" in (
        message
    )
    assert f"Outgoing connections take their ports from {low}-{high} on this machine" in message
    assert "Stop that process" not in message


def test_a_port_a_connection_closed_moments_ago_still_holds_is_said_so() -> None:
    """The side that closes first keeps its port in TIME_WAIT: no process holds it, and a
    listener cannot bind it until the kernel lets it go."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname())
        port = client.getsockname()[1]
        accepted, _ = server.accept()
        client.close()  # closes first: its end waits out TIME_WAIT once the other end closes
        assert accepted.recv(1) == b""
        accepted.close()
    holder = port_holder(port)
    assert holder is not None
    assert holder.who.startswith("a connection closed moments ago")
    with pytest.raises(BrokerError, match="Wait a minute and start again"):
        check_port_free("127.0.0.1", port)


def test_a_taken_port_is_named_with_the_process_holding_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        found = port_holder(port)
        assert found is not None and found.who.endswith(f"(pid {os.getpid()})")
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is in use by ") as caught:
            check_port_free("127.0.0.1", port)
        assert "Stop that process, or set broker.port" in str(caught.value)
    check_port_free("127.0.0.1", port)  # released: free again
    with pytest.raises(BrokerError, match="is not an address here"):
        check_port_free("no-such-host.invalid", 1883)


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
