"""A box with two customers, the gateway running on real Mosquitto, and the portal as its own
process over HTTPS (the box's CA), for the portal's browser and security tests.

``berg-partner`` is the customer under test; ``hof-sonne`` is the other customer, whose every
name is a marker (``GEHEIM``) that must never appear in anything ``berg-partner`` is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from gateway.devices.ports import free_port
from tests.gateway.harness import Harness, running_gateway

CUSTOMER = "berg-partner"
OTHER = "hof-sonne"
MARKERS = ("GEHEIM", "hof-sonne", "stall-geheim-7", "Geheimzweck", "Secret purpose")
PASSWORD = "correct horse battery staple"

POLICY = """
einblick_policy: 1
customer: berg-partner
name: Berg & Partner
language: en
devices:
  - id: room-1
    name: Meeting room
    kind: occupancy
    topics:
      - pattern: "zigbee2mqtt/room-1"
        stream: telemetry
grants:
  - id: demand-heating
    recipient: energy-provider
    purpose: {de: "Heizung nach Belegung", en: "Heating by occupancy"}
    legal_basis: consent
    consent: {given_by: "Dr. Miriam Berg", given_at: 2026-03-01T09:00:00Z}
    devices: [room-1]
    topic: "building/{device}"
    fields:
      occupancy: keep
      seq: keep
  - id: grid-statistics
    recipient: logistics
    purpose: {de: "Netzstatistik", en: "Grid statistics"}
    legal_basis: legitimate_interests
    devices: [room-1]
    topic: "statistics/{device}"
    fields:
      occupancy: keep
"""

OTHER_POLICY = """
einblick_policy: 1
customer: hof-sonne
name: Hof Sonne GEHEIM
language: de
devices:
  - id: stall-geheim-7
    name: Stall GEHEIM
    kind: occupancy
    topics:
      - pattern: "farm/stall-geheim-7"
        stream: telemetry
grants:
  - id: geheim-grant
    recipient: energy-provider
    purpose: {de: "Geheimzweck", en: "Secret purpose"}
    legal_basis: consent
    consent: {given_by: "GEHEIM Person", given_at: 2026-03-01T09:00:00Z}
    devices: [stall-geheim-7]
    topic: "farm/{device}"
    fields:
      occupancy: keep
      seq: keep
"""


async def cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    return int(process.returncode or 0), out.decode(), err.decode()


@dataclass
class PortalSite:
    harness: Harness
    config_path: Path
    url: str
    process: asyncio.subprocess.Process
    stderr_path: Path
    ca_file: Path
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.harness.directory

    def portal_log(self) -> str:
        return _text(self.stderr_path)

    async def invite(self, customer: str = CUSTOMER, name: str = "Miriam Berg") -> str:
        code, out, err = await cli(
            "customer",
            "invite",
            "--config",
            str(self.config_path),
            "--customer",
            customer,
            "--name",
            name,
        )
        assert code == 0, err
        link = out.strip()
        assert link.startswith(self.url + "/invite/"), link
        return link

    def client(self) -> aiohttp.ClientSession:
        """An HTTP client that trusts the box's CA, and only it (TLS is checked, not skipped)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for an IP address
        )
        self.clients.append(session)
        return session

    async def csrf(self, client: aiohttp.ClientSession, path: str) -> str:
        async with client.get(self.url + path) as response:
            text = await response.text()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found is not None, f"no CSRF field on {path}: {text[:300]}"
        return found.group(1)

    async def account(
        self, customer: str = CUSTOMER, login: str = "miriam", password: str = PASSWORD
    ) -> aiohttp.ClientSession:
        """A logged-in client of a new account of ``customer``, made from an invitation."""
        link = await self.invite(customer)
        client = self.client()
        path = link.removeprefix(self.url)
        token = await self.csrf(client, path)
        form = {"csrf": token, "login": login, "password": password, "password2": password}
        async with client.post(link, data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        await self.login(client, login, password)
        return client

    async def login(
        self, client: aiohttp.ClientSession, login: str, password: str, code: str = ""
    ) -> aiohttp.ClientResponse:
        token = await self.csrf(client, "/login")
        form = {"csrf": token, "login": login, "password": password, "code": code}
        async with client.post(self.url + "/login", data=form, allow_redirects=False) as response:
            await response.read()
            return response

    async def publish(self, customer: str, device: str, topic: str, seq: int) -> None:
        connection = await self.harness.device(customer, device)
        try:
            await connection.publish(topic, orjson.dumps({"occupancy": True, "seq": seq}), 1)
        finally:
            await connection.close()

    def latest_seq(self) -> int:
        """The log's newest entry, read as a stranger would (read-only, its own connection)."""
        path = self.harness.gateway.config.database_path.resolve()
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0])

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


async def wait_listening(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    """The fence: the portal printed where it listens (it does so after the socket is bound)."""
    async with asyncio.timeout(30):
        while "portal: https://" not in _text(log):
            if process.returncode is not None:
                raise AssertionError(f"the portal exited: {_text(log)}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def portal_site(tmp_path: Path) -> AsyncIterator[PortalSite]:
    async with running_gateway(
        tmp_path,
        {"berg.yaml": POLICY, "sonne.yaml": OTHER_POLICY},
        [
            (CUSTOMER, "room-1", "Meeting room"),
            (OTHER, "stall-geheim-7", "Stall GEHEIM"),
        ],
    ) as harness:
        config_path = harness.directory / "einblick.yaml"
        port = free_port()
        with config_path.open("a", encoding="utf-8") as handle:
            handle.write(f"portal:\n  host: 127.0.0.1\n  port: {port}\n")
        stderr_path = tmp_path / "portal.stderr"
        with stderr_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "-v",
                "portal",
                "--config",
                str(config_path),
                stderr=log,
            )
        site = PortalSite(
            harness,
            config_path,
            f"https://127.0.0.1:{port}",
            process,
            stderr_path,
            harness.directory / "data" / "tls" / "ca.crt",
        )
        try:
            await wait_listening(site.url, process, stderr_path)
            yield site
        finally:
            await site.close()
            if process.returncode is None:
                process.terminate()
                async with asyncio.timeout(10):
                    await process.wait()
