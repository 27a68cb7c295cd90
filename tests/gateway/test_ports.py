"""Ports on the box (gateway/devices/ports.py), with real sockets on loopback: a free port is
picked below the kernel's range for outgoing connections, and a taken one is named with what
holds it (a listener, an outgoing connection, one closed moments ago) and what to do."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from gateway.devices import ports as ports_module
from gateway.devices.ports import PICK_FROM, check_port_free, free_port, listening, port_holder
from gateway.errors import BrokerError


def _kernel_range_reads(
    low: int, high: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """``ip_local_port_range`` as ``free_port`` reads it, whatever this host has (the real one
    decides the real connections' ports)."""
    path = tmp_path / "ip_local_port_range"
    path.write_text(f"{low}\t{high}\n")
    monkeypatch.setattr(ports_module, "_EPHEMERAL_RANGE", path)
    return low, high


@pytest.fixture
def default_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """The kernel's range for outgoing connections as Linux sets it by default."""
    return _kernel_range_reads(32768, 60999, tmp_path, monkeypatch)


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
    _kernel_range_reads(10500, 60999, tmp_path, monkeypatch)
    picked: list[tuple[int, int]] = []

    def randrange(start: int, stop: int) -> int:
        picked.append((start, stop))
        return start

    monkeypatch.setattr(ports_module.random, "randrange", randrange)  # type: ignore[attr-defined]
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


def test_listening_sees_a_listener_on_a_port_without_connecting_to_it() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert listening("127.0.0.1", port) is False  # bound, not yet listening
        server.listen()
        server.setblocking(False)
        assert listening("127.0.0.1", port) is True
        assert listening("localhost", port) is True
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing connected to find that out
    assert listening("127.0.0.1", port) is False  # closed


def test_listening_at_another_address_is_not_the_one_waited_for() -> None:
    """Debian's own Mosquitto on 127.0.0.1:1883 is not the managed one on the LAN address."""
    port = free_port()  # below the range outgoing connections take theirs from: rebound below
    with socket.socket() as elsewhere:
        elsewhere.bind(("127.0.0.2", port))
        elsewhere.listen()
        assert listening("127.0.0.1", port) is False
        assert listening("127.0.0.2", port) is True
    with socket.socket() as everywhere:
        everywhere.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        everywhere.bind(("0.0.0.0", port))
        everywhere.listen()
        assert listening("127.0.0.1", port) is True  # a wildcard listener takes every address


def test_listening_reads_ipv6_addresses_from_tcp6() -> None:
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listening("::1", port) is True
        assert listening("127.0.0.1", port) is False
