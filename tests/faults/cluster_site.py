"""Several gateway instances on loopback behind one external Mosquitto, for the cluster's fault
scenarios: one device broker the test starts (the gateways do not manage it), one cloud broker,
one shared policies directory, and per instance its own configuration, data directory, key and
process (``python -m gateway run``, so it can be killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from gateway.config import Config, load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.log.reader import Reader
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.control import request
from gateway.operations.scaffold import InitOptions, init_directory
from tests.faults.audit import Captured, write_jsonl
from tests.faults.site import REPO, ReliableDevice, Site, Spy, body

__all__ = ["ClusterSite", "customer_policy"]

RECIPIENT = "oven-maker"


def customer_policy(customer: str) -> str:
    """One press per customer under ``<customer>/press-1/telemetry``; the oven maker gets
    ``seq`` and ``force_kn`` on ``<customer>/presses/press-1`` (so each upstream message names
    its customer, and the audit can give it to the instance that owns it)."""
    return f"""einblick_policy: 1
customer: {customer}
name: {customer}
language: de
devices:
  - id: press-1
    name: Presse 1
    kind: press
    topics:
      - pattern: "{customer}/press-1/telemetry"
        stream: telemetry
grants:
  - id: monitoring
    recipient: {RECIPIENT}
    purpose: {{de: "Zustandsüberwachung", en: "Condition monitoring"}}
    legal_basis: contract
    devices: [press-1]
    topic: "{customer}/presses/{{device}}"
    fields:
      seq: keep
      force_kn: keep
"""


@dataclass
class ClusterSite:
    root: Path
    instances: tuple[str, ...]
    customers: tuple[str, ...]
    listed: dict[str, list[str]] = field(default_factory=dict)  # explicit owners
    databases: dict[str, Path] = field(default_factory=dict)  # an instance's log elsewhere
    device_broker: Mosquitto | None = None
    cloud: Mosquitto | None = None
    spy: Spy | None = None
    configs: dict[str, Path] = field(default_factory=dict)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    faults: int = 0

    def config(self, instance: str) -> Config:
        return load_config(self.configs[instance])

    def owner(self, customer: str) -> str:
        cluster = self.config(self.instances[0]).cluster
        assert cluster is not None
        return cluster.owner(customer)

    async def setup(self) -> None:
        self.device_broker = Mosquitto(
            MosquittoSettings(
                directory=self.root / "device-broker", port=free_port(), anonymous=True
            )
        )
        self.device_broker.write_files([])
        await self.device_broker.start()
        self.cloud = Mosquitto(
            MosquittoSettings(directory=self.root / "cloud", port=free_port(), anonymous=True)
        )
        self.cloud.write_files([])
        await self.cloud.start()
        self.spy = Spy(self.cloud, RECIPIENT)
        await self.spy.start()
        policies = self.root / "policies"
        policies.mkdir()
        for customer in self.customers:
            (policies / f"{customer}.yaml").write_text(customer_policy(customer), "utf-8")
        members = "".join(
            f"    - name: {name}\n      customers: [{', '.join(self.listed.get(name, []))}]\n"
            for name in self.instances
        )
        for name in self.instances:
            path = init_directory(InitOptions(self.root / name, broker_port=free_port()))
            path.write_text(
                f"einblick_config: 1\ninstance: {name}\ndata_dir: data\n"
                f"policies_dir: {policies}\n"
                + (f"database: {self.databases[name]}\n" if name in self.databases else "")
                + "broker:\n  mode: external\n  host: 127.0.0.1\n"
                f"  port: {self.device_broker.settings.port}\n  client_id: einblick-site\n"
                f"recipients:\n  - name: {RECIPIENT}\n    display_name: Ofenbau\n"
                f"    url: mqtt://127.0.0.1:{self.cloud.settings.port}\n"
                "pipeline:\n  checkpoint_interval_s: 0.2\n"
                "  device_max_rate: 1000000\n  device_burst: 1000000\n"
                f"cluster:\n  instances:\n{members}",
                encoding="utf-8",
            )
            self.configs[name] = path

    def device(self, customer: str) -> ReliableDevice:
        assert self.device_broker is not None
        return ReliableDevice(self.device_broker.settings.port, customer, "press-1", "")

    async def start(self, instance: str) -> None:
        log = self.root / f"{instance}.stderr"
        self.processes[instance] = await start_gateway(self.configs[instance], log)

    async def kill(self, instance: str) -> None:
        process = self.processes.pop(instance)
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        self.faults += 1

    async def status(self, instance: str) -> dict[str, Any]:
        socket = self.config(instance).control_socket
        return dict(await request(socket, "status", timeout=2))

    async def wait_until(
        self, condition: Callable[[], Awaitable[bool] | bool], timeout: float, what: str
    ) -> None:
        await Site.wait_until(cast(Site, self), condition, timeout, what)

    async def drained(self) -> bool:
        for instance in self.processes:
            status = await self.status(instance)
            if any(u["outbox_depth"] for u in status["upstreams"]):
                return False
        return True

    def chains(self, instance: str) -> set[str]:
        """The customers whose trees this instance's database holds."""
        reader = Reader.open(self.config(instance).database_path)
        try:
            return set(reader.chain_names().values())
        finally:
            reader.close()

    async def audit(
        self,
        instance: str,
        devices: dict[str, ReliableDevice],
        max_duplicates: int,
        customers: set[str] | None = None,
    ) -> tuple[dict[str, Any], str, int]:
        """The fault suite's auditor over one instance: its customers' published messages and
        upstream arrivals against its log (``customers``: those whose logs it holds, when a
        handover moved one; by default those the cluster: section gives it)."""
        assert self.spy is not None
        mine = (
            customers
            if customers is not None
            else {c for c in devices if self.owner(c) == instance}
        )
        work = self.root / f"audit-{instance}"
        work.mkdir(exist_ok=True)
        received = [m for m in self.spy.captured() if m.topic.split("/", 1)[0] in mine]
        published: list[Captured] = [
            m for c, d in devices.items() if c in mine for m in d.published()
        ]
        write_jsonl(work / "received.jsonl", received)
        write_jsonl(work / "published.jsonl", published)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.audit",
            "--config",
            str(self.configs[instance]),
            "--received",
            str(work / "received.jsonl"),
            "--published",
            str(work / "published.jsonl"),
            "--max-duplicates",
            str(max_duplicates),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode in (0, 1), err.decode(errors="replace")
        return orjson.loads(out), err.decode(errors="replace"), process.returncode or 0

    async def teardown(self) -> None:
        for process in self.processes.values():
            await stop_gateway(process)
        if self.spy is not None:
            await self.spy.stop()
        for broker in (self.cloud, self.device_broker):
            if broker is not None:
                await broker.stop()


def stream_body(customer: str, seq: int) -> bytes:
    return body(f"{customer}-press-1", seq)
