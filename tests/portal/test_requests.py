"""What the installer sees of the portal: a customer's erasure request in ``einblick status`` and
the TUI's overview until ``einblick forget`` answers it; the overview counts messages, not
consent entries; ``einblick run`` starts the portal when it is configured."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from rich.console import Console

from gateway.devices.ports import free_port
from gateway.operations.child import start_gateway, stop_gateway
from gateway.operations.control import request
from gateway.operations.scaffold import InitOptions, init_directory
from tests.portal.site import CUSTOMER, PortalSite, cli, portal_site
from tui.local import LocalSource
from tui.model import Names
from tui.overview import render_overview


def rendered(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


async def overview_text(site: PortalSite) -> tuple[str, LocalSource]:
    config = site.harness.gateway.config
    source = LocalSource(config.database_path, control_socket=config.control_socket)
    await source.open()
    try:
        overview = await source.overview(datetime.now(UTC))
    finally:
        await source.close()
    return rendered(render_overview(overview, Names(), "en")), source


async def test_an_erasure_request_waits_in_status_and_the_tui_until_done(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        client = await site.account()
        token = await site.csrf(client, "/erasure?lang=en")  # English from here on
        form = {"csrf": token, "by": "Miriam Berg", "confirm": "yes"}
        async with client.post(site.url + "/erasure", data=form) as response:
            page = await response.text()
            assert response.status == 200 and "Miriam Berg" in page
            assert "waiting for the installer" in page
        code, status, err = await cli("status", "--config", str(site.config_path))
        assert code == 0, err
        assert f"erasure requested by customer {CUSTOMER} in the portal" in status
        code, raw, err = await cli("status", "--json", "--config", str(site.config_path))
        assert code == 0, err
        [waiting] = orjson.loads(raw)["erasure_requests"]
        assert (waiting["customer"], waiting["by"], waiting["login"]) == (
            CUSTOMER,
            "Miriam Berg",
            "miriam",
        )
        assert waiting["command"] == f"einblick forget --customer {CUSTOMER} --by ..."
        shown, _ = await overview_text(site)
        assert f"Erasure requested in the portal by customer {CUSTOMER}" in shown
        code, _, err = await cli(
            "forget",
            "--config",
            str(site.config_path),
            "--customer",
            CUSTOMER,
            "--by",
            "Miriam Berg",
        )
        assert code == 0, err
        code, status, _ = await cli("status", "--config", str(site.config_path))
        assert "erasure requested" not in status
        code, raw, _ = await cli("status", "--json", "--config", str(site.config_path))
        assert orjson.loads(raw)["erasure_requests"] == []
        shown, _ = await overview_text(site)
        assert "Erasure requested" not in shown
        # The customer's page says it was carried out (it said "waiting" before).
        async with client.get(site.url + "/erasure") as response:
            page = await response.text()
        assert "has been erased since" in page and "waiting for the installer" not in page


async def test_the_overview_counts_messages_not_consent_entries(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        await site.harness.wait_committed(1)
        # Delivered before the withdrawal: one still waiting is held back by it and counted as
        # withheld (tests/gateway/test_report_kept.py), which is not what this test is about.
        await site.harness.cloud.wait_for(2)  # the energy provider's and the logistics' copies
        await request(
            site.harness.gateway.config.control_socket,
            "withdraw",
            customer=CUSTOMER,
            grant="demand-heating",
            by="Miriam",
        )
        config = site.harness.gateway.config
        source = LocalSource(config.database_path, customer=CUSTOMER)
        await source.open()
        try:
            overview = await source.overview(datetime.now(UTC))
        finally:
            await source.close()
        energy = next(r for r in overview.recipients if r.recipient == "energy-provider")
        assert (energy.last_day, energy.last_hour, sum(energy.buckets)) == (1, 1, 1)


async def test_run_starts_the_portal_when_configured(tmp_path: Path) -> None:
    config_path = init_directory(InitOptions(directory=tmp_path / "box", broker_port=free_port()))
    port = free_port()
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"portal:\n  host: 127.0.0.1\n  port: {port}\n")
    gateway = await start_gateway(config_path, tmp_path / "gateway.log")
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "box/data/tls/ca.crt"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as client:
            async with asyncio.timeout(30):
                while True:  # the fence: the portal's process answers
                    try:
                        async with client.get(f"https://127.0.0.1:{port}/login") as response:
                            assert response.status == 200
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
    finally:
        await stop_gateway(gateway)
    # Stopped with the gateway: nothing listens any more.
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(f"http://127.0.0.1:{port}/login") as response:
                raise AssertionError(f"still answering: {response.status}")
        except aiohttp.ClientConnectionError:
            pass
