"""``einblick demo``: everything on loopback, started with one command and stopped cleanly.

    cloud Mosquitto (stands in for every recipient) ◀── gateway (its own managed Mosquitto)
                                                          ▲
                                  simulated devices ──────┘   TUI in the foreground

The gateway and the cloud broker run as child processes, as on an edge box; the simulated
devices publish from a thread with their own credentials; the TUI reads the gateway's log.
Ctrl-C (or leaving the TUI) stops the devices, then the gateway (which signs a last checkpoint),
then the brokers.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Literal

from gateway.config import Config, load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.devices.registry import Registry
from gateway.errors import GatewayError
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.control import ControlError, request
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.operations.status_text import render_status
from simulators.demo import demo_fleet
from simulators.publisher import Credentials, Publisher
from tui.launch import run_tui

__all__ = ["run_demo"]

MARKER = ".einblick-demo"


class _Services:
    """The cloud broker and the gateway process, run by an event loop in a helper thread."""

    def __init__(self, directory: Path, config_path: Path, cloud_port: int) -> None:
        self.directory = directory
        self.config_path = config_path
        self.cloud_port = cloud_port
        self.ready = threading.Event()
        self.error: str | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(
            target=self._thread, name="einblick-demo-services", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=30)

    def _thread(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        cloud = Mosquitto(
            MosquittoSettings(
                directory=self.directory / "cloud", port=self.cloud_port, anonymous=True
            )
        )
        gateway: asyncio.subprocess.Process | None = None
        try:
            cloud.write_files([])
            await cloud.start()
            gateway = await start_gateway(
                self.config_path, self.directory / "gateway.log", options=("-v",)
            )
            self.ready.set()
            await self._stop.wait()
        except (GatewayError, TimeoutError) as exc:
            self.error = str(exc) or "the gateway did not become ready within 30 s"
            self.ready.set()
        finally:
            if gateway is not None:
                await stop_gateway(gateway, timeout=15)
            await cloud.stop()


def _invite_first_customer(config: Config, customers: list[str]) -> None:
    """Print a portal invitation for the demo's first customer (the link opens in a browser
    on this machine; the certificate is the demo CA's, so the browser warns once)."""
    from gateway.operations.portal.store import PortalStore  # noqa: PLC0415

    if config.portal is None or not customers:
        return
    store = PortalStore(config.portal_db)
    try:
        token, _ = store.invite(customers[0], customers[0], 24 * 3600.0)
    finally:
        store.close()
    url = f"https://127.0.0.1:{config.portal.port}/invite/{token}"
    print(f"  customer portal: {url} (customer {customers[0]})", file=sys.stderr)


def run_demo(
    directory: Path,
    *,
    tui: bool = True,
    duration: float | None = None,
    lang: Literal["de", "en"] | None = None,
) -> int:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists():
            raise GatewayError(
                f"{directory} exists and is not a demo directory; choose another with --dir"
            )
        shutil.rmtree(directory)  # every demo starts from a fresh log
    directory.mkdir(parents=True)
    (directory / MARKER).write_text(
        "einblick demo directory: deleted and recreated by 'einblick demo'\n"
    )
    cloud_port = free_port()
    config_path = init_directory(
        InitOptions(
            directory=directory,
            broker_port=free_port(),
            upstream_url=f"mqtt://127.0.0.1:{cloud_port}",
        )
    )
    # The customers' portal on loopback, started by the gateway like on a box.
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"portal:\n  host: 127.0.0.1\n  port: {free_port()}\n")
    config = load_config(config_path)
    registry = Registry(config.data_path / "devices.json")
    fleet = demo_fleet()
    credentials: dict[str, Credentials] = {}
    for device in fleet:
        entry, password = registry.add(
            device.customer, device.device, name=device.name, kind=device.kind
        )
        credentials[device.simulated.device_id] = Credentials(entry.username, password)
    registry.save()

    print(f"Einblick demo in {directory}", file=sys.stderr)
    print(
        f"  device broker 127.0.0.1:{config.broker.port}, cloud broker 127.0.0.1:{cloud_port}",
        file=sys.stderr,
    )
    services = _Services(directory, config_path, cloud_port)
    services.start()
    services.ready.wait(60)
    if services.error:
        print(f"einblick: the demo could not start: {services.error}", file=sys.stderr)
        services.stop()
        return 1
    _invite_first_customer(config, [d.customer for d in fleet])
    publisher = Publisher(
        [d.simulated for d in fleet],
        host="127.0.0.1",
        port=config.broker.port,
        rate=0.5,
        qos=1,
        credentials=lambda _i, device: credentials[device.device_id],
        client_id_prefix="demo",
        drain_timeout=2.0,
    )

    def publish() -> None:
        try:
            publisher.run()
        except Exception as exc:  # a thread's exception would otherwise vanish
            print(
                f"einblick: the simulated devices stopped: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )

    devices = threading.Thread(target=publish, name="einblick-demo-devices", daemon=True)
    devices.start()
    code = 0
    try:
        if tui:
            code = run_tui(config_path, None, None, lang)
        else:
            deadline = time.monotonic() + duration if duration else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.1, (deadline - time.monotonic()) if deadline else 5.0)))
                with contextlib.suppress(ControlError):
                    print(
                        render_status(asyncio.run(request(config.control_socket, "status"))) + "\n",
                        file=sys.stderr,
                    )
    except KeyboardInterrupt:
        pass
    finally:
        publisher.stop()
        devices.join(timeout=15)
        services.stop()
    print(
        f"demo stopped; its log stays in {directory} (einblick verify --db {config.database_path})",
        file=sys.stderr,
    )
    return code
