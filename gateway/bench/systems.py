"""The systems ``einblick bench`` measures, each between a fresh pair of loopback brokers: A, where
the load devices publish, and B, the cloud where the probe listens.

- ``bridge``: Mosquitto's own bridge A → B (``topic # out 1``), the floor.
- ``forwarder``: a minimal paho-mqtt process, subscribe on A, publish on B, no policy, no log.
- ``einblick``: the gateway (``einblick run``) with the example policies plus the benchmark
  customer; every message decided, explained, chained, committed, covered by a signed checkpoint
  and forwarded after commit, QoS 1 both sides.
- ``einblick-unpaced``: the same with ``pipeline.wake_interval_ms: 0``, every packet waking the
  event loop at once (gateway/messages/pacing.py): what the pacing saves, in the same run;
  ``einblick-wake10`` and the like: another wake interval (ms), latency traded for CPU. Not run
  unless named in ``--systems``.

Measuring them is gateway/bench/pipeline.py's; the stage and portal benchmarks start them too.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

from gateway.bench.load import Generator
from gateway.bench.results import MAX_WAKE_MS, UNPACED, WAKE_PREFIX, wake_interval_ms
from gateway.config import load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.scaffold import EXAMPLE_RECIPIENTS, InitOptions, init_directory
from simulators.load import LoadDevice
from simulators.publisher import Publisher

__all__ = ["DEVICES", "SYSTEMS", "SYSTEM_CHOICES", "System", "bench_policy", "unknown_systems"]

DEVICES = 10
SYSTEMS = ("bridge", "forwarder", "einblick")  # run unless --systems names others
SYSTEM_CHOICES = ", ".join((*SYSTEMS, UNPACED, f"{WAKE_PREFIX}N (N ms, 1-{MAX_WAKE_MS})"))


def unknown_systems(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are no system here, sorted (for the refusal's message)."""
    return sorted(name for name in set(names) - set(SYSTEMS) if wake_interval_ms(name) is None)


def bench_policy(devices: int) -> str:
    device_lines = "".join(
        f'  - id: load-{i:04d}\n    name: "Lastgerät {i}"\n    kind: load\n    topics:\n'
        f'      - pattern: "bench/load-{i:04d}"\n        stream: telemetry\n'
        for i in range(devices)
    )
    return f"""einblick_policy: 1
customer: bench
name: Benchmark GmbH
language: de
devices:
{device_lines}grants:
  - id: monitoring
    recipient: cloud
    purpose: {{de: "Zustandsüberwachung", en: "Condition monitoring"}}
    legal_basis: contract
    kinds: [load]
    topic: "cloud/{{customer}}/{{device}}"
    fields:
      dev: keep
      seq: keep
      sent_ns: keep
      temperature: {{round: 0.5}}
"""


class System:
    """One system under test between broker A and broker B."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.entry: tuple[str, tuple[str, ...]] = ("gateway", ())  # the gateway's -m and options
        self.a_port = free_port()
        self.b_port = free_port()
        bridge: tuple[str, ...] = ()
        if name == "bridge":
            bridge = (
                "connection bench-bridge",
                f"address 127.0.0.1:{self.b_port}",
                "topic # out 1",
                "cleansession true",
                "bridge_max_packet_size 0",
                "max_inflight_messages 1000",
            )
        self.a = Mosquitto(MosquittoSettings(root / "a", self.a_port, anonymous=True, extra=bridge))
        self.b = Mosquitto(MosquittoSettings(root / "b", self.b_port, anonymous=True))
        self.process: asyncio.subprocess.Process | None = None
        self.database: Path | None = None
        self.control_socket: Path | None = None

    @property
    def pid(self) -> int:
        if self.name == "bridge":
            pid = self.a.pid
        else:
            assert self.process is not None
            pid = self.process.pid
        assert pid is not None
        return pid

    def publisher(
        self, fleet: list[LoadDevice], rate: float, duration: float, prefix: str, drain: float
    ) -> Publisher:
        """QoS 1 load into broker A: ``rate`` msg/s in total, spread over the fleet."""
        return Publisher(
            fleet,
            host="127.0.0.1",
            port=self.a_port,
            rate=rate / len(fleet),
            qos=1,
            duration=duration,
            client_id_prefix=prefix,
            drain_timeout=drain,
        )

    def load(self, rate: float, duration: float, processes: int) -> Generator:
        """The benchmark's devices publishing into broker A (``rate`` 0: as fast as they go)."""
        return Generator(
            self.a_port,
            rate,
            duration,
            DEVICES,
            "bench",
            processes,
            client_prefix=f"bench-{self.name}",
        )

    def log_bytes(self) -> int:
        """Bytes of the database file once the WAL is folded in (the WAL itself is transient)."""
        if self.database is None:
            return 0
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return self.database.stat().st_size

    async def start(self) -> None:
        self.b.write_files([])
        await self.b.start()
        self.a.write_files([])
        await self.a.start()
        if self.name == "forwarder":
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.bench.forwarder",
                str(self.a_port),
                str(self.b_port),
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
            assert self.process.stdout is not None
            async with asyncio.timeout(10):
                await self.process.stdout.readline()
        elif self.name == "einblick" or wake_interval_ms(self.name) is not None:
            await self._start_einblick()
        await asyncio.sleep(0.3)  # subscriptions and bridge settle

    async def _start_einblick(self) -> None:
        directory = self.root / "edge"
        config_path = init_directory(
            InitOptions(directory, upstream_url=f"mqtt://127.0.0.1:{self.b_port}")
        )
        (directory / "policies" / "bench.yaml").write_text(bench_policy(DEVICES), encoding="utf-8")
        text = config_path.read_text(encoding="utf-8")
        text = text.replace("  mode: managed ", "  mode: external").replace(
            "  port: 1883", f"  port: {self.a_port}"
        )
        recipients = "".join(
            f"  - name: {name}\n    display_name: {display!r}\n    url: mqtt://127.0.0.1:{self.b_port}\n"
            for name, display in {**EXAMPLE_RECIPIENTS, "cloud": "Bench Cloud"}.items()
        )
        head, _, rest = text.partition("recipients:\n")
        _, _, tail = rest.partition("\noutbox:")
        # Ten load devices carry a plant's traffic: lift the per-device flood limit (100/s default).
        tail = tail.replace(
            "pipeline:\n", "pipeline:\n  device_max_rate: 1000000\n  device_burst: 1000000\n"
        )
        if (wake := wake_interval_ms(self.name)) is not None:
            tail = tail.replace("pipeline:\n", f"pipeline:\n  wake_interval_ms: {wake}\n")
        config_path.write_text(f"{head}recipients:\n{recipients}\noutbox:{tail}", encoding="utf-8")
        config = load_config(config_path)
        self.database, self.control_socket = config.database_path, config.control_socket
        module, options = self.entry
        self.process = await start_gateway(
            config_path, self.root / "gateway.log", upstreams=True, module=module, options=options
        )

    async def stop(self) -> None:
        if self.process is not None:
            await stop_gateway(self.process)
        await self.a.stop()
        await self.b.stop()
