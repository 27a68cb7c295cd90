"""The portal in this test's process, on a box made by ``einblick init``: plain HTTP on
loopback (the configuration allows it there only), a real log file written by the log's own
writer with the box's key, and ``portal.db`` with an account per customer. For tests of the
portal's modules that need no running gateway; tests/portal/site.py runs the whole box."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from gateway.config import Config, load_config
from gateway.devices.ports import free_port
from gateway.log.keys import Signer
from gateway.operations.portal.service import serve
from gateway.operations.portal.store import PortalStore
from gateway.operations.scaffold import InitOptions, init_directory
from tests.log.conftest import Log, make_draft

MINE = "baeckerei-schmidt"
THEIRS = "metallbau-huber"
PASSWORD = "a long enough password"


@dataclass
class Box:
    config: Config
    url: str
    log: Log
    clients: list[aiohttp.ClientSession]

    def store(self) -> PortalStore:
        return PortalStore(self.config.portal_db)

    def write(self, first: int, count: int, customer: str = MINE) -> None:
        self.log.write([make_draft(i, customer=customer) for i in range(first, first + count)])

    def client(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.clients.append(session)
        return session

    async def csrf(self, client: aiohttp.ClientSession, path: str) -> str:
        async with client.get(self.url + path) as response:
            text = await response.text()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found is not None, f"no CSRF field on {path}: {text[:300]}"
        return found.group(1)

    async def login(
        self, client: aiohttp.ClientSession, login: str = "anna", code: str = ""
    ) -> int:
        token = await self.csrf(client, "/login")
        form = {"csrf": token, "login": login, "password": PASSWORD, "code": code}
        async with client.post(self.url + "/login", data=form, allow_redirects=False) as response:
            await response.read()
            return response.status

    async def session(self, login: str = "anna") -> aiohttp.ClientSession:
        client = self.client()
        assert await self.login(client, login) == 303
        return client


def account(config: Config, customer: str, login: str) -> None:
    store = PortalStore(config.portal_db)
    try:
        token, _ = store.invite(customer, login.title(), 3600)
        store.accept(token, login, PASSWORD)
    finally:
        store.close()


@contextlib.asynccontextmanager
async def portal_box(tmp_path: Path, settings: str = "") -> AsyncIterator[Box]:
    """``settings``: more lines under ``portal:`` (two spaces in)."""
    config_path = init_directory(InitOptions(directory=tmp_path / "box", broker_port=free_port()))
    port = free_port()
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"portal:\n  host: 127.0.0.1\n  port: {port}\n  plain_http: true\n{settings}")
    config = load_config(config_path)
    log = Log(config.database_path, Signer.load(config.signing_key_path))
    log.write([make_draft(i, customer=THEIRS if i % 2 else MINE) for i in range(10)])
    account(config, MINE, "anna")
    account(config, THEIRS, "huber")
    listening = asyncio.Event()
    box = Box(config, f"http://127.0.0.1:{port}", log, [])
    async with asyncio.TaskGroup() as group:
        server = group.create_task(serve(config, lambda _: listening.set()), name="portal")
        try:
            async with asyncio.timeout(10):
                await listening.wait()
            yield box
        finally:
            for client in box.clients:
                await client.close()
            server.cancel()
            log.close()
