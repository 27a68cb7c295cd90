"""A whole site on loopback for fault tests: cloud brokers, a gateway subprocess, real devices.

Everything here is real: Mosquitto processes, ``python -m gateway run`` as a child process (so it
can be killed with SIGKILL), devices and subscribers speaking MQTT over TCP. Faults are injected
from outside, the way they happen on an edge box.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.config import Config, load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.devices.registry import Registry
from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.mqtt import MqttConnection
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.control import request
from gateway.operations.scaffold import InitOptions, init_directory
from tests.faults.audit import Captured, write_jsonl
from tests.gateway.test_durability import POLICY as MONITORING_POLICY

__all__ = [
    "POLICY",
    "SEED",
    "AuditResult",
    "ReliableDevice",
    "Site",
    "Spy",
    "body",
    "check_upstream_fields",
    "stream",
]

# Two recipients, each with its own broker; each gets some fields, never ``operator`` or ``badge``:
# the durability tests' policy (monitoring for the oven maker) plus billing for the energy provider.
POLICY = (
    MONITORING_POLICY
    + """  - id: billing
    recipient: energy-provider
    purpose: {de: "Abrechnung", en: "Billing"}
    legal_basis: contract
    devices: [press-1, press-2]
    topic: "energy/{device}"
    fields:
      seq: keep
      energy_kwh: {round: 0.1}
"""
)

# The repository root: the auditor runs from here as ``python -m tests.faults.audit``.
REPO = Path(__file__).resolve().parents[2]

RECIPIENTS = ("oven-maker", "energy-provider")
GRANTED = {"oven-maker": {"seq", "force_kn"}, "energy-provider": {"seq", "energy_kwh"}}


class Spy:
    """A persistent-session subscriber on one cloud broker; reconnects when the broker returns."""

    def __init__(self, broker: Mosquitto, recipient: str) -> None:
        self.broker = broker
        self.recipient = recipient
        self.received: list[Inbound] = []
        self._connection: MqttConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(
            self._keep(), name=f"spy-{self.recipient}"
        )

    async def _connect(self) -> None:
        connection = MqttConnection(
            Endpoint("127.0.0.1", self.broker.settings.port, f"spy-{self.recipient}"),
            on_message=self._got,
            manual_ack=True,
            clean_session=False,
        )
        await connection.open()
        await connection.subscribe("#", 1)
        self._connection = connection

    async def _keep(self) -> None:
        while True:
            if self._connection is not None:
                await self._connection.closed
            try:
                await self._connect()
            except MqttError:
                await asyncio.sleep(0.2)

    def _got(self, message: Inbound) -> None:
        self.received.append(message)
        message.ack()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()

    def captured(self) -> list[Captured]:
        return [Captured(m.topic, m.payload, self.recipient) for m in self.received]


class ReliableDevice:
    """A QoS 1 device as firmware does it: every message is kept until its PUBACK, and after a
    lost connection it reconnects (same client id, persistent session) and publishes again
    whatever was not acknowledged."""

    def __init__(self, port: int, customer: str, device: str, password: str) -> None:
        self.endpoint = Endpoint(
            "127.0.0.1",
            port,
            f"{customer}.{device}",
            username=f"{customer}.{device}",
            password=password,
        )
        self.unacked: dict[int, tuple[str, bytes]] = {}
        self.acked: dict[int, tuple[str, bytes]] = {}
        self.reconnects = 0
        self._connection: MqttConnection | None = None
        self._futures: dict[int, asyncio.Future[None]] = {}
        self._progress = asyncio.Event()

    async def _ensure(self) -> MqttConnection:
        connection = self._connection
        if connection is not None and not connection.closed.done():
            return connection
        delay = 0.05
        while True:
            connection = MqttConnection(self.endpoint, clean_session=False, max_inflight=200)
            try:
                await connection.open(timeout=5)
                break
            except MqttError:
                await connection.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        if self._connection is not None:
            self.reconnects += 1
        self._connection = connection
        for seq, (topic, body) in sorted(self.unacked.items()):  # again, in order
            self._send(connection, seq, topic, body)
        return connection

    def _send(self, connection: MqttConnection, seq: int, topic: str, body: bytes) -> None:
        future = connection.publish(topic, body, 1)
        self._futures[seq] = future
        future.add_done_callback(lambda f, s=seq: self._done(s, f))

    def _done(self, seq: int, future: asyncio.Future[None]) -> None:
        if self._futures.get(seq) is future:
            del self._futures[seq]
        if not future.cancelled() and future.exception() is None and seq in self.unacked:
            self.acked[seq] = self.unacked.pop(seq)
        self._progress.set()

    async def publish(self, seq: int, topic: str, body: bytes, *, window: int = 200) -> None:
        self.unacked[seq] = (topic, body)
        connection = await self._ensure()
        if seq not in self._futures:
            self._send(connection, seq, topic, body)
        while len(self._futures) >= window:
            await self._wait()

    async def _wait(self) -> None:
        self._progress.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self._progress.wait()
        await self._ensure()

    async def drain(self, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while self.unacked:
                await self._wait()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def published(self) -> list[Captured]:
        return [Captured(topic, body) for _, (topic, body) in sorted(self.acked.items())]


@dataclass
class AuditResult:
    summary: dict[str, Any]
    problems: str
    returncode: int


@dataclass
class Site:
    """Cloud brokers (one per recipient), a configured edge directory and a gateway process."""

    root: Path
    clouds: dict[str, Mosquitto] = field(default_factory=dict)
    spies: dict[str, Spy] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    config_path: Path = Path()
    process: asyncio.subprocess.Process | None = None
    faults: int = 0

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def gateway_log(self) -> Path:
        return self.root / "gateway.stderr"

    async def setup(
        self,
        *,
        devices: Iterable[str] = ("press-1", "press-2"),
        policy: str = POLICY,
        database: Path | None = None,
        # The test devices stand for whole plants and, after a restart, the broker hands over
        # their backlog at once: only the flood test itself keeps the per-device limit.
        pipeline: str = "  device_max_rate: 1000000\n  device_burst: 1000000\n",
        broker_lines: str = "",  # further lines of the broker section, indented by two spaces
    ) -> None:
        for recipient in RECIPIENTS:
            broker = Mosquitto(
                MosquittoSettings(
                    directory=self.root / f"cloud-{recipient}", port=free_port(), anonymous=True
                )
            )
            broker.write_files([])
            await broker.start()
            self.clouds[recipient] = broker
            self.spies[recipient] = Spy(broker, recipient)
            await self.spies[recipient].start()
        edge = self.root / "edge"
        self.config_path = init_directory(InitOptions(edge, broker_port=free_port()))
        for old in (edge / "policies").glob("*.yaml"):
            old.unlink()
        (edge / "policies" / "werk-nord.yaml").write_text(policy, encoding="utf-8")
        port = load_config(self.config_path).broker.port
        recipients = "".join(
            f"  - name: {name}\n    display_name: {name!r}\n"
            f"    url: mqtt://127.0.0.1:{self.clouds[name].settings.port}\n"
            for name in RECIPIENTS
        )
        self.config_path.write_text(
            "einblick_config: 1\ninstance: edge-faults\ndata_dir: data\npolicies_dir: policies\n"
            + (f"database: {database}\n" if database else "")
            + f"broker:\n  mode: managed\n  host: 127.0.0.1\n  port: {port}\n{broker_lines}"
            + f"recipients:\n{recipients}"
            + f"pipeline:\n  checkpoint_interval_s: 0.2\n{pipeline}",
            encoding="utf-8",
        )
        registry = Registry(self.config.data_path / "devices.json")
        for device in devices:
            _, password = registry.add("werk-nord", device, name=device, kind="press")
            assert password is not None
            self.passwords[device] = password
        registry.save()

    def device(self, name: str) -> ReliableDevice:
        return ReliableDevice(self.config.broker.port, "werk-nord", name, self.passwords[name])

    async def start_gateway(self, *options: str) -> None:
        self.process = await start_gateway(self.config_path, self.gateway_log, options=options)

    async def status(self) -> dict[str, Any]:
        # 10 s: on a loaded CI machine a busy gateway (replaying a backlog after a fault) can
        # take more than 2 s to get to the control socket; the conditions waited on are
        # bounded by their own timeouts.
        return dict(await request(self.config.control_socket, "status", timeout=10))

    async def kill_gateway(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        self.faults += 1

    async def stop_gateway(self) -> None:
        if self.process is not None:
            await stop_gateway(self.process)

    def broker_pid(self) -> int:
        return int((self.config.broker_dir / "mosquitto.pid").read_text().strip())

    async def settle(self, condition: Callable[[], Awaitable[bool] | bool], timeout: float) -> bool:
        """Wait for ``condition``, at most ``timeout`` s; the audit says what is missing."""
        try:
            await self.wait_until(condition, timeout, "")
        except AssertionError:
            return False
        return True

    async def wait_until(
        self, condition: Callable[[], Awaitable[bool] | bool], timeout: float, what: str
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = condition()
                    if not isinstance(result, bool):
                        result = await result
                    if result:
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None

    async def outbox_empty(self) -> bool:
        status = await self.status()
        return all(u["outbox_depth"] == 0 for u in status["upstreams"])

    async def audit(
        self, devices: Iterable[ReliableDevice], *, max_duplicates: int | None = None
    ) -> AuditResult:
        received = self.root / "received.jsonl"
        published = self.root / "published.jsonl"
        write_jsonl(received, [m for spy in self.spies.values() for m in spy.captured()])
        write_jsonl(published, [m for d in devices for m in d.published()])
        args = ["--config", str(self.config_path), "--received", str(received)]
        args += ["--published", str(published)]
        if max_duplicates is not None:
            args += ["--max-duplicates", str(max_duplicates)]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.audit",
            *args,
            cwd=REPO,  # the auditor is test tooling: importable as ``tests.faults`` from the root
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()

        assert process.returncode in (0, 1), err.decode(errors="replace")
        return AuditResult(orjson.loads(out), err.decode(errors="replace"), process.returncode)

    async def teardown(self) -> None:
        await self.stop_gateway()
        for spy in self.spies.values():
            await spy.stop()
        for broker in self.clouds.values():
            await broker.stop()
        self._kill_left_broker()

    def _kill_left_broker(self) -> None:
        """A broker the gateway could not stop (it was killed first) must not outlive the test."""
        with contextlib.suppress(OSError, ValueError):
            pid = self.broker_pid()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"mosquitto" in cmdline and str(self.config.broker_dir).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)


SEED = int(os.environ.get("EINBLICK_FAULT_SEED", "0")) or random.randrange(1, 1 << 30)


def body(device: str, seq: int) -> bytes:
    return orjson.dumps(
        {
            "seq": seq,
            "dev": device,
            "force_kn": 100 + seq % 50,
            "energy_kwh": seq * 0.013,
            "operator": "M. Keller",
            "badge": f"B-{seq:06d}-SECRET",
        }
    )


async def stream(device: ReliableDevice, name: str, total: int, rate: float) -> None:
    """``total`` messages at about ``rate`` per second (no faster: below the flood limit)."""
    started = time.monotonic()
    for seq in range(total):
        await device.publish(seq, f"factory/{name}/telemetry", body(name, seq))
        ahead = seq / rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    await device.drain()


def check_upstream_fields(site: Site, *, exact: bool = True) -> None:
    """Each upstream got its granted fields (all of them, when ``exact``) and nothing else."""
    for recipient, spy in site.spies.items():
        for message in spy.received:
            fields = set(orjson.loads(message.payload))
            assert fields <= GRANTED[recipient], message.payload
            assert fields == GRANTED[recipient] or not exact, message.payload
