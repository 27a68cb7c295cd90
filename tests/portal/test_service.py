"""Serving: TLS by default with the box's certificate (HSTS on), every part's routes mounted,
and a certificate that cannot be used said for the installer."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from gateway.config import load_config
from gateway.devices.ports import free_port
from gateway.errors import GatewayError
from gateway.operations.portal.server import open_portal, tls_context
from gateway.operations.portal.service import build_app, serve
from gateway.operations.scaffold import InitOptions, init_directory


def box(tmp_path: Path, portal: str) -> Path:
    config_path = init_directory(InitOptions(directory=tmp_path / "box", broker_port=free_port()))
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(portal)
    return config_path


async def test_tls_is_on_by_default_with_the_boxs_certificate(tmp_path: Path) -> None:
    port = free_port()
    config = load_config(box(tmp_path, f"portal:\n  host: 127.0.0.1\n  port: {port}\n"))
    ready: asyncio.Queue[str] = asyncio.Queue()
    async with asyncio.TaskGroup() as group:
        server = group.create_task(serve(config, ready.put_nowait), name="portal")
        async with asyncio.timeout(10):
            where = await ready.get()
        assert where == f"https://127.0.0.1:{port}/"
        context = ssl.create_default_context(cafile=str(config.data_path / "tls" / "ca.crt"))
        connector = aiohttp.TCPConnector(ssl=context)
        async with (
            aiohttp.ClientSession(connector=connector) as client,
            client.get(where + "login") as response,
        ):
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert "__Host-einblick-csrf" in response.cookies
        async with aiohttp.ClientSession() as client:  # plain HTTP gets no page
            with pytest.raises(aiohttp.ClientError):
                async with client.get(f"http://127.0.0.1:{port}/login") as response:
                    await response.read()
        server.cancel()


def test_every_part_is_mounted(tmp_path: Path) -> None:
    config = load_config(box(tmp_path, "portal:\n  host: 127.0.0.1\n  plain_http: true\n"))
    portal = open_portal(config)
    try:
        app = build_app(portal)
        routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    finally:
        portal.store.close()
        portal.hasher.shutdown()
    for expected in (
        ("GET", "/login"),  # auth
        ("GET", "/log"),  # pages
        ("GET", "/checkpoint"),
        ("POST", "/grants/{grant}/{action}"),  # rights
        ("GET", "/receipts/{seq}"),
        ("GET", "/live"),  # live
    ):
        assert expected in routes, expected


def test_a_certificate_that_cannot_be_used_is_said(tmp_path: Path) -> None:
    portal = "portal:\n  cert_file: mine.crt\n  key_file: mine.key\n"
    config = load_config(box(tmp_path, portal))
    assert config.portal is not None
    with pytest.raises(GatewayError, match=r"cannot use the TLS certificate .*mine\.crt"):
        tls_context(config, config.portal)
