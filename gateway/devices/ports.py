"""Ports on the box: picking a free one, saying what holds a taken one, and seeing one listen.

The managed Mosquitto checks its listener ports before it starts (``check_port_free``): when
one is taken, the installer reads what holds it and what to do. Its start then waits until they
listen (``listening``), without connecting to them. ``free_port`` picks ports for
the demo, the benchmarks and the tests from below the kernel's range for outgoing connections,
where no connection can take them between the pick and the bind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import BrokerError

__all__ = [
    "PICK_FROM",
    "PortHolder",
    "check_port_free",
    "ephemeral_range",
    "free_port",
    "listening",
    "port_holder",
]


def check_port_free(host: str, port: int) -> None:
    """Raise BrokerError naming the port and, where /proc tells, what holds it and what to do.

    Mosquitto binds its listeners after it has started; when one is taken it exits, but
    something answers on the port, so waiting for the port alone would call the start a
    success. Bound as Mosquitto binds (SO_REUSEADDR): a port a listener left in TIME_WAIT is
    free; one an outgoing connection used is not, for as long as the kernel keeps it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BrokerError(f"broker.listen {host!r} is not an address here: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            holder = port_holder(port) or PortHolder(
                "a socket this user cannot see",
                f"`sudo ss -tanp 'sport = :{port}'` shows it; or set broker.port / "
                "broker.tls_port to a free port in the configuration",
            )
            raise BrokerError(
                f"port {port} on {host} is in use by {holder.who} ({exc.strerror}); the device "
                f"broker cannot listen there. {holder.advice}"
            ) from None


@dataclass(frozen=True, slots=True)
class PortHolder:
    """What holds a TCP port, and what the installer can do about it."""

    who: str  # 'mosquitto (pid 1234)', 'the local end of an outgoing connection of …'
    advice: str


def port_holder(port: int) -> PortHolder | None:
    """What holds ``port``, as far as /proc shows: the process listening on it; else the one
    whose outgoing connection has it as its local end (connections take their ports from the
    kernel's range for them, where a port free a moment ago may be taken); else a connection
    closed moments ago, whose port the kernel still keeps. None if no socket shows."""
    listening: set[str] = set()
    connected: set[str] = set()
    closed = False
    for state, inode, _ in _sockets(port) or []:
        if state == _LISTEN:
            listening.add(inode)
        elif inode != "0":
            connected.add(inode)
        else:  # inode 0: no process holds it any more (TIME_WAIT, FIN_WAIT2)
            closed = True
    if listening:
        found = _process_with(listening)
        return PortHolder(
            found or "a process of another user",
            "Stop that process, or set broker.port / broker.tls_port to a free port in the "
            "configuration",
        )
    if connected:
        found = _process_with(connected)
        who = (
            f"the local end of an outgoing connection of {found}"
            if found
            else "the local end of a connection of another user's process, or of one that "
            "just closed"
        )
        return PortHolder(who, _connection_advice())
    if closed:
        return PortHolder(
            "a connection closed moments ago (the kernel keeps its port for up to a minute)",
            f"Wait a minute and start again. {_connection_advice()}",
        )
    return None


def listening(host: str, port: int) -> bool | None:
    """Whether a socket listens on TCP ``port`` at ``host`` (or at every address) on this
    machine; None where /proc/net/tcp and tcp6 cannot be read (not Linux).

    The managed broker's start waits for this rather than for a connection to the port: a probe
    connection to the TLS listener breaks off a handshake, and Mosquitto logs that as a refused
    TLS client, which ``einblick status`` would show the installer as a device's refusal. A
    listener of another process at that address counts too, as a connection to it did: the port
    was checked free just before (``check_port_free``), a Mosquitto that cannot bind it exits,
    and the broker's own fds may not be readable (a binary with a capability to bind low
    ports). One at another address does not (Debian's own Mosquitto on 127.0.0.1:1883, the
    managed one on the LAN address)."""
    sockets = _sockets(port)
    if sockets is None:
        return None
    try:
        wanted = {
            ipaddress.ip_address(str(info[4][0]).split("%")[0])
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        }
    except (OSError, ValueError):
        wanted = set()  # unresolvable: check_port_free has said so already; any address counts
    return any(
        state == _LISTEN and (not wanted or address in wanted or address.is_unspecified)
        for state, _, address in sockets
    )


_LISTEN = "0A"  # the state column of /proc/net/tcp
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _sockets(port: int) -> list[tuple[str, str, _Address]] | None:
    """(state, inode, local address) of every TCP socket whose local port is ``port``, from
    /proc/net/tcp and tcp6; None if neither can be read."""
    found: list[tuple[str, str, _Address]] = []
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            if len(fields) <= 9:
                continue
            address, _, local_port = fields[1].rpartition(":")
            if int(local_port, 16) == port:
                found.append((fields[3], fields[9], _proc_address(address)))
    return found if readable else None


def _proc_address(hexadecimal: str) -> _Address:
    """An address as /proc/net/tcp prints it: 32-bit words, each in the host's byte order."""
    raw = bytes.fromhex(hexadecimal)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def _connection_advice() -> str:
    """Where a port no outgoing connection can take lies, on this machine."""
    low, high = ephemeral_range()
    elsewhere = (
        f"set broker.port / broker.tls_port below {low} in the configuration"
        if low > 1024
        else "set broker.port / broker.tls_port to another free port in the configuration"
    )
    return f"Outgoing connections take their ports from {low}-{high} on this machine: {elsewhere}"


def _process_with(inodes: set[str]) -> str | None:
    """'name (pid N)' of a process with one of the sockets ``inodes`` among its open files."""
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        name = (proc / "comm").read_text().strip()
                        return f"{name} (pid {proc.name})"
    return None


# Ports picked for brokers, portals and tests come from below the kernel's range for outgoing
# connections (``ip_local_port_range``, 32768-60999 by default). One picked inside it is free
# when picked, but until it is bound it can become the own port of any outgoing connection on
# the machine: a test run under load met "port … in use" that way.
PICK_FROM = 10_000
PICK_TRIES = 200
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A loopback TCP port free now, below the range outgoing connections take ports from."""
    below, _ = ephemeral_range()
    if below - PICK_FROM >= 1_000:
        for _ in range(PICK_TRIES):
            port = random.randrange(PICK_FROM, below)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))  # no SO_REUSEADDR: TIME_WAIT counts as taken
                except OSError:
                    continue
                return port
    # A range that starts low, or a crowded machine: the kernel's own pick.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        picked: int = sock.getsockname()[1]
        return picked


def ephemeral_range() -> tuple[int, int]:
    """The ports outgoing connections take theirs from (``ip_local_port_range``)."""
    try:
        low, high = (int(field) for field in _EPHEMERAL_RANGE.read_text().split()[:2])
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
    return low, high
