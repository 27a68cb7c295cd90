"""``einblick bench --instances N``: throughput of 1, 2, … N gateway instances, in one run.

For each count n, on loopback: one device broker (external mode: the gateways do not manage
it), one cloud broker, six customers with one device each, and n instances in a cluster, the
customers dealt round-robin (``customers:`` lists, so the load is even; rendezvous hashing over
six customers would not be). The backlog method keeps the load generator out of the figure:
the instances start once (their persistent sessions and subscriptions exist), stop, the devices
publish the whole backlog into the broker, which queues it for the sessions; then every instance
starts again and the figure is the distinct messages arriving at the cloud per second, from the
first arrival to the last. Every message is decided, logged, committed and forwarded as in
production (QoS 1 both sides, a signed checkpoint covering it).

Instances share the machine with the brokers and the measuring subscriber: the figure scales
only as far as the cores do (say how many: os.cpu_count() is printed).

What each role costs, in CPU seconds from /proc: the instances together, from their restart to
the last arrival, less what each spent starting up (measured at an idle start, all together as in the measured one, so the
figure is the messages' cost, not Python's imports); the two brokers together, from the first
publish of the backlog to the last arrival (taking it in from the devices, queueing it, handing
it to the instances and taking the forwarded copies). Per message: divided by the messages.

``--cpu-per-instance 0.25``: each instance in its own control group allowed a quarter of one
core (``gateway.bench.cpu_quota``), from its start on, so that n instances have n budgets even
where the machine has fewer cores than instances plus brokers. Each budget stands in for one
core of a slower box; the table then shows whether the instances' throughput grows with their
number or something they share is the limit. The share of 100 ms periods in which each
instance used up its budget (``throttled``) says whether the limit bound at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.bench.cpu_quota import CpuQuota, QuotaError
from gateway.bench.process_stats import cpu_seconds
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.scaffold import InitOptions, init_directory

__all__ = ["InstancesResult", "main", "run_forwarder", "run_instances"]

CUSTOMERS = tuple(f"werk-{n}" for n in range(1, 7))
RECIPIENT = "cloud"

POLICY = """einblick_policy: 1
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
    recipient: cloud
    purpose: {{de: "Zustandsüberwachung", en: "Condition monitoring"}}
    legal_basis: contract
    devices: [press-1]
    topic: "{customer}/presses/{{device}}"
    fields:
      seq: keep
      force_kn: keep
"""


@dataclass(frozen=True, slots=True)
class InstancesResult:
    instances: int
    messages: int
    arrived: int  # distinct messages at the cloud
    seconds: float  # first to last arrival
    per_second: float
    instances_cpu_s: float  # the instances together, less their start-up
    brokers_cpu_s: float  # the device broker and the cloud broker together
    # With a CPU limit per instance: each instance's share of periods it ran out of budget.
    throttled: tuple[float, ...] = ()
    system: str = "einblick"  # or "forwarder": the plain paho forwarder, one process

    def us_per_message(self, cpu_s: float) -> float:
        return cpu_s / max(self.arrived, 1) * 1e6


async def _publish(port: int, customer: str, count: int) -> None:
    """``count`` messages of the customer's press, QoS 1, at most 500 unacknowledged."""
    link = MqttConnection(Endpoint("127.0.0.1", port, f"{customer}.press-1"), max_inflight=500)
    await link.open()
    try:
        pending: set[asyncio.Future[None]] = set()
        for seq in range(count):
            body = orjson.dumps({"seq": seq, "force_kn": 100 + seq % 50, "operator": "M. Keller"})
            pending.add(link.publish(f"{customer}/press-1/telemetry", body, 1))
            if len(pending) >= 500:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    future.result()
        if pending:
            await asyncio.gather(*pending)
    finally:
        await link.close()


def _limit_each(
    configs: list[Path],
    cores: float,
    into: list[CpuQuota],
    *,
    root: Path | None = None,
    version: int = 0,
) -> None:
    """One control group per instance and run (pid in the name: two benches never share one),
    each added to ``into`` as soon as it exists: when a later one cannot be set up, the caller's
    ``finally`` still removes the ones before it."""
    for path in configs:
        name = f"einblick-bench-{os.getpid()}-{path.parent.name}"
        into.append(CpuQuota(name, cores, root=root, version=version))


async def _start_together(
    configs: list[Path],
    hooks: list[Callable[[int], None] | None],
    into: list[asyncio.subprocess.Process],
) -> None:
    """Start every instance at once: started one after another, the first would drain alone
    while the others start up (seconds under a CPU limit), and the span would measure the
    start-ups. Each one that started is added to ``into`` even when another failed, so the
    caller's ``finally`` stops it; then the first failure is raised."""
    started = await asyncio.gather(
        *(
            start_gateway(path, path.parent / "gateway.log", spawned=hook)
            for path, hook in zip(configs, hooks, strict=True)
        ),
        return_exceptions=True,
    )
    into.extend(p for p in started if not isinstance(p, BaseException))
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome


class _Site:
    """The device broker, the cloud broker and the cloud's measuring subscriber that a run
    drains its backlog through (the instances' run and the forwarder's alike)."""

    def __init__(self, root: Path) -> None:
        self.device = Mosquitto(
            MosquittoSettings(root / "device-broker", free_port(), anonymous=True)
        )
        self.cloud = Mosquitto(MosquittoSettings(root / "cloud", free_port(), anonymous=True))
        self._arrivals: dict[bytes, float] = {}
        self._complete = asyncio.Event()
        self._total = 0
        self._brokers_before = 0.0
        self._spy = MqttConnection(
            Endpoint("127.0.0.1", self.cloud.settings.port, "bench-spy"), on_message=self._arrived
        )

    def _arrived(self, message: Inbound) -> None:
        self._arrivals.setdefault(
            message.topic.encode() + b"\0" + message.payload, time.monotonic()
        )
        if self._total and len(self._arrivals) >= self._total:
            self._complete.set()

    async def __aenter__(self) -> _Site:
        try:
            for broker in (self.device, self.cloud):
                broker.write_files([])
                await broker.start()
            await self._spy.open()
            await self._spy.subscribe("#", 1)
        except BaseException:
            await self.__aexit__()  # a broker already started is not left running
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._spy.close()
        finally:
            for broker in (self.device, self.cloud):
                await broker.stop()  # a broker that never started: nothing to stop

    def _brokers_cpu(self) -> float:
        return sum(cpu_seconds(b.pid) for b in (self.device, self.cloud) if b.pid is not None)

    async def backlog(self, messages: int) -> None:
        """The customers' devices publish ``messages`` in all into the device broker, which
        queues them for the sessions of whoever is stopped now."""
        self._brokers_before = self._brokers_cpu()
        per_customer = messages // len(CUSTOMERS)
        port = self.device.settings.port
        await asyncio.gather(*(_publish(port, c, per_customer) for c in CUSTOMERS))
        self._total = per_customer * len(CUSTOMERS)

    async def drained(
        self, count: int, cpu_s: Callable[[], float], quotas: list[CpuQuota], system: str
    ) -> InstancesResult:
        """Wait until the whole backlog arrived at the cloud, and measure: ``cpu_s`` is what
        the system under test spent on it."""
        async with asyncio.timeout(max(120.0, self._total / 100)):
            await self._complete.wait()
        times = sorted(self._arrivals.values())
        seconds = max(times[-1] - times[0], 1e-9)
        return InstancesResult(
            count,
            self._total,
            len(self._arrivals),
            seconds,
            len(self._arrivals) / seconds,
            instances_cpu_s=cpu_s(),
            brokers_cpu_s=self._brokers_cpu() - self._brokers_before,
            throttled=tuple(q.throttling().share for q in quotas),
            system=system,
        )


async def run_instances(
    root: Path, count: int, messages: int, cpu_per_instance: float | None = None
) -> InstancesResult:
    """One measurement with ``count`` instances and ``messages`` messages in all; with
    ``cpu_per_instance``, each instance limited to that share of one core."""
    processes: list[asyncio.subprocess.Process] = []
    quotas: list[CpuQuota] = []
    async with _Site(root) as site:
        try:
            configs = _configure(root, count, site)
            # Once, so each instance's session and subscriptions exist; then the backlog queues.
            # Twice: the second start is idle and starts what exists already, as the measured
            # one does; its CPU (imports, keys, the log opened) is not the messages' cost.
            # Started together, as the measured start is: one after another they would not
            # compete for the cores, and their start-up would cost less than in the measured run.
            starting = 0.0
            for _ in range(2):
                await _start_together(configs, [None] * len(configs), processes)
                starting = sum(cpu_seconds(p.pid) for p in processes)
                for process in processes:
                    await stop_gateway(process)
                processes.clear()
            await site.backlog(messages)
            hooks: list[Callable[[int], None] | None] = [None] * len(configs)
            if cpu_per_instance is not None:
                _limit_each(configs, cpu_per_instance, quotas)
                hooks = [q.add for q in quotas]
            await _start_together(configs, hooks, processes)
            return await site.drained(
                count,
                lambda: sum(cpu_seconds(p.pid) for p in processes) - starting,
                quotas,
                "einblick",
            )
        finally:
            for process in processes:
                await stop_gateway(process)
            for quota in quotas:
                quota.close()


def _configure(root: Path, count: int, site: _Site) -> list[Path]:
    """``count`` instances in one cluster, the customers dealt round-robin; their configs."""
    policies = root / "policies"
    policies.mkdir()
    for customer in CUSTOMERS:
        (policies / f"{customer}.yaml").write_text(POLICY.format(customer=customer), "utf-8")
    names = [f"hall-{n}" for n in range(1, count + 1)]
    members = "".join(
        f"    - name: {name}\n      customers: [{', '.join(CUSTOMERS[i::count])}]\n"
        for i, name in enumerate(names)
    )
    configs = []
    for name in names:
        path = init_directory(InitOptions(root / name, broker_port=free_port()))
        path.write_text(
            f"einblick_config: 1\ninstance: {name}\ndata_dir: data\npolicies_dir: {policies}\n"
            f"broker:\n  mode: external\n  port: {site.device.settings.port}\n"
            f"  client_id: einblick-bench\n"
            f"recipients:\n  - name: {RECIPIENT}\n    display_name: Cloud\n"
            f"    url: mqtt://127.0.0.1:{site.cloud.settings.port}\n"
            "pipeline:\n  device_max_rate: 1000000\n  device_burst: 1000000\n"
            f"cluster:\n  instances:\n{members}",
            encoding="utf-8",
        )
        configs.append(path)
    return configs


async def _start_forwarder(
    site: _Site, into: list[asyncio.subprocess.Process], quota: CpuQuota | None = None
) -> asyncio.subprocess.Process:
    """Start the baseline forwarder on its persistent session; it is added to ``into`` as soon
    as it exists, so the caller's ``finally`` stops it even if it never says it is ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.bench.forwarder",
        str(site.device.settings.port),
        str(site.cloud.settings.port),
        "--session",
        "bench-forwarder",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    into.append(process)
    if quota is not None:
        quota.add(process.pid)
    assert process.stdout is not None
    async with asyncio.timeout(30):
        said = await process.stdout.readline()
    if said != b"ready\n":
        raise RuntimeError(f"the baseline forwarder did not start: it said {said!r}")
    return process


async def _stop_forwarder(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        async with asyncio.timeout(30):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_forwarder(
    root: Path, messages: int, cpu_per_process: float | None = None
) -> InstancesResult:
    """The plain paho forwarder (``gateway/bench/forwarder.py``, one process, no policy, no
    log) drained the same way: its persistent session exists, it stops, the backlog queues,
    it starts again (with ``cpu_per_process``, in a control group of that share of one core,
    the budget each instance gets) and forwards all of it. The single-process baseline that
    n instances are held to; its CPU less what an idle start of it cost (started twice first,
    as the instances are: the second start finds its session, as the measured one does)."""
    processes: list[asyncio.subprocess.Process] = []
    quotas: list[CpuQuota] = []
    async with _Site(root) as site:
        try:
            starting = 0.0
            for _ in range(2):
                idle = await _start_forwarder(site, processes)
                starting = cpu_seconds(idle.pid)
                await _stop_forwarder(idle)
                processes.clear()
            await site.backlog(messages)
            if cpu_per_process is not None:
                quotas.append(CpuQuota(f"einblick-bench-{os.getpid()}-forwarder", cpu_per_process))
            measured = await _start_forwarder(site, processes, quotas[0] if quotas else None)
            return await site.drained(
                1, lambda: cpu_seconds(measured.pid) - starting, quotas, "forwarder"
            )
        finally:
            for process in processes:
                await _stop_forwarder(process)
            for quota in quotas:
                quota.close()


def _row(label: str, result: InstancesResult, baseline: InstancesResult) -> str:
    throttled = " ".join(f"{share:.0%}" for share in result.throttled)
    return (
        f"{label:>22} {result.messages:>9} {result.arrived:>9} {result.seconds:>8.1f} "
        f"{result.per_second:>8.0f} {result.per_second / baseline.per_second:>5.2f}x "
        f"{result.instances_cpu_s:>6.1f} {result.us_per_message(result.instances_cpu_s):>7.0f} "
        f"{result.brokers_cpu_s:>9.1f} {result.us_per_message(result.brokers_cpu_s):>10.0f}"
        + (f"  {throttled}" if throttled else "")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="einblick bench --instances")
    parser.add_argument("--instances", type=int, required=True, help="measure 1 … N instances")
    parser.add_argument("--messages", type=int, default=30_000, help="backlog, all customers")
    parser.add_argument(
        "--cpu-per-instance",
        type=float,
        metavar="CORES",
        help="limit each instance to this share of one core (e.g. 0.25), through a control "
        "group: a slower core per instance, so scaling shows on a box with few cores (root)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.instances <= len(CUSTOMERS):
        parser.error(f"--instances must be 1 to {len(CUSTOMERS)} (one customer each at least)")
    limit = args.cpu_per_instance
    if limit is not None:
        try:
            CpuQuota(f"einblick-bench-{os.getpid()}-check", limit).close()
        except QuotaError as exc:
            parser.error(str(exc))
    print(f"cores: {os.cpu_count()}; backlog {args.messages} messages, {len(CUSTOMERS)} customers")
    if limit is not None:
        print(
            f"each process limited to {limit:g} of one core (control group, from its start): "
            "each instance, and the plain paho forwarder, which is one process"
        )
    print("CPU: the system under test (less its start-up), the two brokers together")
    print(
        f"{'system':>22} {'messages':>9} {'arrived':>9} {'seconds':>8} {'msg/s':>8} "
        f"{'× fwd':>6} {'cpu s':>6} {'us/msg':>7} {'brk cpu s':>9} {'brk us/msg':>10}"
        + ("  throttled" if limit is not None else "")
    )
    with tempfile.TemporaryDirectory(prefix="einblick-bench-") as directory:
        baseline = asyncio.run(run_forwarder(Path(directory), args.messages, limit))
    print(_row("plain paho forwarder", baseline, baseline), flush=True)
    for count in range(1, args.instances + 1):
        with tempfile.TemporaryDirectory(prefix="einblick-bench-") as directory:
            result = asyncio.run(run_instances(Path(directory), count, args.messages, limit))
        label = f"{count} Einblick instance" + ("s" if count > 1 else "")
        print(_row(label, result, baseline), flush=True)
    print(
        "× fwd: msg/s against the plain paho forwarder in the same run"
        + (", each process with the same budget." if limit is not None else ".")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
