"""The benchmark's load generator: QoS 1 PUBLISH packets written straight to the socket, from
several processes, so that the generator is not what a "max" row measures.

The Python paho publisher (``simulators.publisher``) spends ~80 µs of CPU per message; on a small
box that put the generator's own ceiling near the systems' (~2,200–3,000 msg/s), so every "max"
row measured the generator. Here each worker process holds a share of the devices' connections,
builds each PUBLISH from a template (a few µs) and writes everything due in one ``send`` per
connection per tick; broker PUBACKs are counted, not parsed one by one. Messages carry the same
JSON as ``simulators.load.LoadDevice`` (``dev``, ``seq``, ``sent_ns``, ``temperature``, ``pad``),
so the same ``LatencyProbe`` measures them and the same benchmark policy decides them.

MQTT 3.1.1 framing (OASIS spec §2.2, §3.1, §3.3, §3.4); only what a QoS 1 publisher needs.

    python -m gateway.bench.load PORT RATE DURATION FIRST COUNT PREFIX   (one worker; the
    benchmark starts them through ``Generator``)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port

__all__ = [
    "Generator",
    "GeneratorError",
    "GeneratorResult",
    "NullSubscriber",
    "ceiling",
    "publish_packet",
]

# Unacknowledged PUBLISHes per connection before the worker waits for PUBACKs: packet ids are
# 16 bits, so the window must stay well under 65,535 for ids in flight to stay unique.
WINDOW = 4096
TICK_S = 0.001  # a rate-limited worker wakes this often and writes what is due
CONNECT_TIMEOUT_S = 10.0


class GeneratorError(RuntimeError):
    """A generator worker could not connect or did not finish."""


def _remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer (§2.2.3)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, keep-alive off (a run is shorter than any timeout)."""
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """PUBLISH at QoS 1 (§3.3): fixed header 0x32, topic, packet id, payload."""
    body_len = 2 + len(topic) + 2 + len(payload)
    return b"".join(
        (
            b"\x32",
            _remaining_length(body_len),
            struct.pack("!H", len(topic)),
            topic,
            struct.pack("!H", packet_id),
            payload,
        )
    )


class _Device:
    """One device's connection; ``sent`` is the number of messages it wrote (seq 0..sent-1)."""

    def __init__(self, device_id: str, topic: str, size: int) -> None:
        self.device_id = device_id
        self.topic = topic.encode()
        self.size = size
        self.sent = 0
        self.acked = 0
        self._partial = b""  # a PUBACK split across two reads
        self.sock: socket.socket | None = None

    def connect(self, port: int, client_id: str) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(client_id))
        connack = b""
        while len(connack) < 4:
            chunk = sock.recv(4 - len(connack))
            if not chunk:
                raise GeneratorError(f"127.0.0.1:{port} closed the connection before CONNACK")
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            raise GeneratorError(f"127.0.0.1:{port} refused {client_id}: CONNACK {connack.hex()}")
        sock.setblocking(False)
        self.sock = sock

    def message(self, now_ns: int) -> bytes:
        """The next PUBLISH: LoadDevice's JSON, padded to ``size`` bytes."""
        seq = self.sent
        self.sent += 1
        temperature = round(20.0 + 5.0 * math.sin(seq / 10.0), 2)
        head = f'{{"dev":"{self.device_id}","seq":{seq},"sent_ns":{now_ns},"temperature":{temperature},"pad":"'
        pad = "x" * max(0, self.size - len(head) - 2)
        return publish_packet(self.topic, seq % 65535 + 1, f'{head}{pad}"}}'.encode())

    def read_acks(self) -> None:
        """Count the PUBACKs waiting on the socket (the broker sends nothing else here)."""
        assert self.sock is not None
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            raise GeneratorError(f"the broker closed {self.device_id}'s connection mid-run")
        data = self._partial + data
        whole = len(data) - len(data) % 4
        self._partial = data[whole:]
        acks = data[:whole]
        if acks[::4] != b"\x40" * (whole // 4):
            raise GeneratorError(f"{self.device_id}: expected only PUBACKs, got {acks[:8].hex()}")
        self.acked += whole // 4


class GeneratorResult(BaseModel):
    """What a run offered: per device the messages written (seq 0..n-1) and what was acked."""

    sent: dict[str, int]
    acked: int
    seconds: float  # from the first message written to the last

    @property
    def published(self) -> int:
        return sum(self.sent.values())

    @property
    def offered_rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


def _run_worker(
    port: int, rate: float, duration: float, devices: list[_Device], client_prefix: str
) -> GeneratorResult:
    """Publish ``rate`` msg/s in total over ``devices`` (0: as fast as the broker takes them)."""
    for i, device in enumerate(devices):
        device.connect(port, f"{client_prefix}-{os.getpid()}-{i}")
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise GeneratorError("the benchmark did not say go")
    socks = [d.sock for d in devices if d.sock is not None]
    by_fd = {sock.fileno(): d for d, sock in zip(devices, socks, strict=True)}
    start = time.monotonic()
    end = start + duration
    written = 0
    burst = 64  # messages per connection per turn when unlimited
    while (now := time.monotonic()) < end:
        due = int((now - start) * rate) if rate > 0 else written + burst * len(devices)
        wall_ns = time.time_ns()
        batches: dict[int, list[bytes]] = {}
        while written < due:
            device = devices[written % len(devices)]
            if device.sent - device.acked >= WINDOW:
                break  # flow control: wait for this connection's PUBACKs
            batches.setdefault(written % len(devices), []).append(device.message(wall_ns))
            written += 1
        for index, packets in batches.items():
            sock = devices[index].sock
            assert sock is not None
            sock.setblocking(True)
            sock.sendall(b"".join(packets))
            sock.setblocking(False)
        timeout = 0.0 if rate <= 0 else max(0.0, min(TICK_S, end - time.monotonic()))
        readable, _, _ = select.select(socks, [], [], timeout)
        for sock in readable:
            by_fd[sock.fileno()].read_acks()
    seconds = time.monotonic() - start
    drain_until = time.monotonic() + 30.0
    while sum(d.acked for d in devices) < written and time.monotonic() < drain_until:
        readable, _, _ = select.select(socks, [], [], 0.1)
        for sock in readable:
            by_fd[sock.fileno()].read_acks()
    for device in devices:
        if device.sock is not None:
            device.sock.close()
    return GeneratorResult(
        sent={d.device_id: d.sent for d in devices},
        acked=sum(d.acked for d in devices),
        seconds=seconds,
    )


@dataclass
class Generator:
    """``processes`` workers sharing ``devices`` connections to 127.0.0.1:``port``."""

    port: int
    rate: float  # msg/s in total; 0: as fast as the workers go
    duration: float
    devices: int
    prefix: str
    processes: int = 2
    size: int = 200
    client_prefix: str = ""  # MQTT client ids; the topic prefix by default

    def __post_init__(self) -> None:
        self._workers: list[subprocess.Popen[str]] = []

    def run(self) -> GeneratorResult:
        """Connect every worker, start them together, wait for them, merge their counts."""
        self.start()
        self.go()
        return self.wait()

    def start(self) -> None:
        """Start the workers; returns once every connection has its CONNACK."""
        shares = [list(range(w, self.devices, self.processes)) for w in range(self.processes)]
        try:
            for share in (s for s in shares if s):
                args = [
                    str(self.port),
                    str(self.rate * len(share) / self.devices),
                    str(self.duration),
                    ",".join(str(i) for i in share),
                    self.prefix,
                    str(self.size),
                    self.client_prefix or self.prefix,
                ]
                self._workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gateway.bench.load", *args],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            for worker in self._workers:
                assert worker.stdout is not None
                if worker.stdout.readline().strip() != "ready":
                    raise GeneratorError(
                        f"a load generator worker could not connect to 127.0.0.1:{self.port} "
                        "(is the broker running?)"
                    )
        except BaseException:
            self._kill()
            raise

    def go(self) -> None:
        """Every worker starts publishing now."""
        for worker in self._workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()

    def wait(self) -> GeneratorResult:
        """Wait for the workers to finish (their duration, then PUBACKs); merge their counts."""
        try:
            results = []
            for worker in self._workers:
                out, _ = worker.communicate(timeout=self.duration + 60)
                if worker.returncode != 0:
                    raise GeneratorError(
                        f"a load generator worker failed (exit {worker.returncode})"
                    )
                results.append(GeneratorResult.model_validate_json(out.strip().splitlines()[-1]))
        finally:
            self._kill()
        return GeneratorResult(
            sent={k: v for r in results for k, v in r.sent.items()},
            acked=sum(r.acked for r in results),
            seconds=max(r.seconds for r in results),
        )

    def _kill(self) -> None:
        for worker in self._workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def subscribe_packet(topic_filter: str, qos: int) -> bytes:
    """SUBSCRIBE (§3.8), packet id 1, one filter."""
    body = struct.pack("!H", 1) + _string(topic_filter) + bytes([qos])
    return b"\x82" + _remaining_length(len(body)) + body


class NullSubscriber:
    """Subscribes to ``#`` at QoS 0 and throws away what arrives: the cheapest consumer there
    is, so a bare broker with it measures the generator, not the subscriber."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        self._sock.sendall(connect_packet(f"einblick-null-{os.getpid()}"))
        self._sock.sendall(subscribe_packet("#", 0))
        # CONNACK (4 bytes) and SUBACK (5 bytes) before anything is published.
        got = b""
        while len(got) < 9:
            chunk = self._sock.recv(9 - len(got))
            if not chunk:
                raise GeneratorError(f"127.0.0.1:{port} closed the null subscriber's connection")
            got += chunk
        if got[0] != 0x20 or got[4] != 0x90:
            raise GeneratorError(f"127.0.0.1:{port}: unexpected reply to SUBSCRIBE: {got.hex()}")
        self.received_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="null-subscriber", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                return
            self.received_bytes += len(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


async def ceiling(root: Path, duration: float, devices: int, processes: int) -> GeneratorResult:
    """The generator's own ceiling: as fast as it goes into a bare Mosquitto (anonymous, on
    loopback) with a null subscriber, acked messages per second. Measured in the same run as
    the systems, so a "max" row can show the generator was not its limit."""
    port = free_port()
    broker = Mosquitto(MosquittoSettings(root / "ceiling", port, anonymous=True))
    broker.write_files([])
    await broker.start()
    try:
        subscriber = NullSubscriber(port)
        try:
            generator = Generator(port, 0.0, duration, devices, "ceiling", processes)
            return await asyncio.to_thread(generator.run)
        finally:
            subscriber.close()
    finally:
        await broker.stop()


def _worker_main(argv: list[str]) -> int:
    port, rate, duration = int(argv[0]), float(argv[1]), float(argv[2])
    indices, prefix, size = [int(i) for i in argv[3].split(",")], argv[4], int(argv[5])
    devices = [_Device(f"load-{i:04d}", f"{prefix}/load-{i:04d}", size) for i in indices]
    result = _run_worker(port, rate, duration, devices, argv[6])
    print(json.dumps(result.model_dump()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
