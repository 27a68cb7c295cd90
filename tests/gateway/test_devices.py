"""Onboarding against a running gateway: `einblick device add|remove|rotate` as an integrator and
an installer use them, the printed snippets run as they are (mosquitto_pub and paho), plain TCP
and TLS with a client certificate, revocation at once, and refusals the installer can see."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.devices.ports import free_port
from gateway.devices.tls import CertificateAuthority, TlsFiles
from gateway.messages.endpoint import Endpoint, MqttError
from gateway.messages.mqtt import MqttConnection
from gateway.messages.tls import TlsSettings
from gateway.operations.status_text import render_status
from tests.gateway.harness import Harness, running_gateway

BAKERY = """einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - pattern: "bakery/oven-1/telemetry"
        stream: telemetry
grants:
  - id: maintenance
    recipient: oven-maker
    purpose: {de: "Fernwartung", en: "Remote maintenance"}
    legal_basis: contract
    devices: "*"
    streams: [telemetry]
    topic: "ovens/{customer}/{device}/telemetry"
    fields:
      temperature: keep
"""

CUSTOMER = "baeckerei-schmidt"


def tls_edits(port: int) -> dict[str, str]:
    return {
        "# tls_port: 8883     ": f"tls_port: {port}   ",
        "require_client_cert: false": "require_client_cert: true",
    }


async def einblick(h: Harness, *args: str) -> str:
    """Run the real CLI against the running gateway (in a child process: the gateway answers
    its control socket from this test's event loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        "--config",
        str(h.directory / "einblick.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def section(snippet: str, heading: str) -> str:
    """The indented block under ``heading`` in a printed snippet, dedented."""
    lines = snippet.split(heading, 1)[1].splitlines()[1:]
    block: list[str] = []
    for line in lines:
        if not line.strip():
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


async def run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def run_snippets(snippet: str) -> None:
    """The mosquitto_pub line and the paho program exactly as printed."""
    code, out = await run("bash", "-c", section(snippet, "mosquitto_pub:"))
    assert code == 0, out
    code, out = await run(sys.executable, "-c", section(snippet, "Python (paho-mqtt 2.x):"))
    assert code == 0, out


async def wait_received(h: Harness, count: int, timeout: float = 10.0) -> None:
    assert h.gateway.pipeline is not None
    async with asyncio.timeout(timeout):
        while h.gateway.pipeline.stats.received < count:
            await asyncio.sleep(0.02)


async def wait_refusal(
    h: Harness, kind: str, who: str = "", timeout: float = 10.0, *, detail: str | None = None
) -> None:
    async with asyncio.timeout(timeout):
        while not any(
            r["kind"] == kind and who in str(r["who"]) and (detail is None or r["detail"] == detail)
            for r in h.gateway.status().to_json()["refusals"]
        ):
            await asyncio.sleep(0.02)


async def refused_login(endpoint: Endpoint, match: str | None = None) -> None:
    """A login the broker refuses (its CONNACK, or the connection's end)."""
    conn = MqttConnection(endpoint)
    with pytest.raises(MqttError, match=match):
        await conn.open()
    await conn.close()


async def wait_refusals(h: Harness, kind: str, count: int) -> None:
    """Until ``count`` refusals of ``kind`` are counted, each seen line having been read."""
    async with asyncio.timeout(10):
        while refusal_count(h, kind) < count:
            await asyncio.sleep(0.02)


def refusal_count(h: Harness, kind: str) -> int:
    return sum(
        int(str(r["count"])) for r in h.gateway.status().to_json()["refusals"] if r["kind"] == kind
    )


def tls_refusals(h: Harness) -> int:
    return refusal_count(h, "tls_refused")


def tls_endpoint(h: Harness, username: str, bundle: Path) -> Endpoint:
    port = h.gateway.config.broker.tls_port
    assert port is not None
    return Endpoint(
        "127.0.0.1",
        port,
        username,
        tls=TlsSettings(
            str(bundle / "ca.crt"), str(bundle / "client.crt"), str(bundle / "client.key")
        ),
    )


async def test_password_device_connects_with_the_printed_snippets(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, []) as h:
        snippet = await einblick(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Backofen 3", "--id", "oven-3"
        )
        assert "password:" in snippet and f"username:  {CUSTOMER}.oven-3" in snippet
        await run_snippets(snippet)
        await wait_received(h, 2)
        listing = await einblick(h, "device", "list")
        assert f"{CUSTOMER}/oven-3" in listing and "password" in listing


async def test_certificate_device_connects_over_tls_with_the_printed_snippets(
    tmp_path: Path,
) -> None:
    edits = tls_edits(free_port())
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, [], config_edits=edits) as h:
        snippet = await einblick(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Backofen 3", "--id", "oven-3",
            "--cert",
        )  # fmt: skip
        assert "password" not in snippet.split("mosquitto_pub:")[0].lower().replace(
            "no password", ""
        )
        bundle = h.directory / "data" / "tls" / "devices" / f"{CUSTOMER}.oven-3"
        assert (bundle / "client.key").stat().st_mode & 0o077 == 0
        assert bundle.stat().st_mode & 0o077 == 0
        await run_snippets(snippet)
        await wait_received(h, 2)
        listing = await einblick(h, "device", "list")
        assert "certificate" in listing


async def test_removed_password_device_is_disconnected_and_refused(tmp_path: Path) -> None:
    devices = [(CUSTOMER, "oven-1", "Backofen 1")]
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, devices) as h:
        conn = await h.device(CUSTOMER, "oven-1")
        await conn.publish("bakery/oven-1/telemetry", b'{"temperature": 180}', 1)
        await einblick(h, "device", "remove", "--customer", CUSTOMER, "--id", "oven-1")
        await asyncio.wait_for(asyncio.shield(conn.closed), 5)  # the open session is closed
        with pytest.raises(MqttError, match=r"not authorised|bad user name"):
            await h.device(CUSTOMER, "oven-1")
        await conn.close()


async def test_rotated_password_closes_the_old_session_and_the_new_one_works(
    tmp_path: Path,
) -> None:
    devices = [(CUSTOMER, "oven-1", "Backofen 1")]
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, devices) as h:
        conn = await h.device(CUSTOMER, "oven-1")
        snippet = await einblick(h, "device", "rotate", "--customer", CUSTOMER, "--id", "oven-1")
        await asyncio.wait_for(asyncio.shield(conn.closed), 5)
        with pytest.raises(MqttError):
            await h.device(CUSTOMER, "oven-1")  # the old password
        await run_snippets(snippet)
        await conn.close()


async def test_removed_certificate_device_is_disconnected_and_refused(tmp_path: Path) -> None:
    edits = tls_edits(free_port())
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, [], config_edits=edits) as h:
        await einblick(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Backofen 3", "--id", "oven-3",
            "--cert",
        )  # fmt: skip
        bundle = h.directory / "data" / "tls" / "devices" / f"{CUSTOMER}.oven-3"
        endpoint = tls_endpoint(h, f"{CUSTOMER}.oven-3", bundle)
        conn = MqttConnection(endpoint)
        await conn.open()
        await conn.publish(f"devices/{CUSTOMER}/oven-3/telemetry", b'{"temperature": 180}', 1)
        await wait_received(h, 1)
        await einblick(h, "device", "remove", "--customer", CUSTOMER, "--id", "oven-3")
        await asyncio.wait_for(asyncio.shield(conn.closed), 30)
        await conn.close()
        again = MqttConnection(endpoint)
        with pytest.raises(MqttError):
            await again.open(timeout=5)  # the CRL refuses the certificate at the handshake
        await again.close()
        await wait_refusal(h, "tls_refused", timeout=30, detail="certificate verify failed")
        # that refusal alone: the broker's restart waited for its listeners without connecting
        assert tls_refusals(h) == 1
        # The gateway's own session came back after the broker restart: its reconnect backoff
        # reaches 10 s, and a loaded CI machine restarts Mosquitto slowly, so allow a minute.
        async with asyncio.timeout(60):
            while not h.gateway.device_state.connected:
                await asyncio.sleep(0.05)


async def test_refusals_are_counted_and_shown_to_the_installer(tmp_path: Path) -> None:
    edits = {
        **tls_edits(free_port()),
        "report_denied_publish: false": "report_denied_publish: true ",
    }
    devices = [(CUSTOMER, "oven-1", "Backofen 1"), (CUSTOMER, "oven-2", "Backofen 2")]
    policy = BAKERY.replace(
        '        stream: telemetry\ngrants:',
        '        stream: telemetry\n  - id: oven-2\n    name: Backofen 2\n    kind: oven\n'
        '    topics:\n      - pattern: "bakery/oven-2/telemetry"\n        stream: telemetry\n'
        'grants:',
    )  # fmt: skip
    async with running_gateway(tmp_path, {"bakery.yaml": policy}, devices, config_edits=edits) as h:
        # 1. a wrong password
        wrong = Endpoint("127.0.0.1", h.port, "x", username=f"{CUSTOMER}.oven-1", password="nope")
        await refused_login(wrong, match=r"not authorised|bad user name")
        await wait_refusal(h, "bad_credentials", "127.0.0.1")
        # 1b. no user name, and a client id made to read like a refused certificate elsewhere:
        # Mosquitto logs the id, and it must neither count as one nor name an address
        forged = Endpoint(
            "127.0.0.1",
            h.port,
            "connection from 203.0.113.9 failed: error:0A000086:SSL routines::certificate "
            "verify failed",
        )
        await refused_login(forged)
        await wait_refusals(h, "bad_credentials", 2)
        assert "203.0.113.9" not in str(h.gateway.status().to_json()["refusals"])
        # 2. publishing under another device's topic: Mosquitto drops it, the log says so
        oven1 = await h.device(CUSTOMER, "oven-1")
        await oven1.publish("bakery/oven-2/telemetry", b'{"temperature": 1}', 1)
        await wait_refusal(h, "denied_publish", f"{CUSTOMER}.oven-1")
        await oven1.close()
        # 3. an expired certificate from our own CA, 4. a certificate from another CA
        tls = h.directory / "data" / "tls"
        ca = CertificateAuthority.load(TlsFiles(tls))
        now = datetime.now(UTC)
        expired = ca.issue_client(
            f"{CUSTOMER}.oven-1",
            tmp_path / "expired",
            days=-1,
            now=now,
            not_before=now - timedelta(days=30),
        )
        other = CertificateAuthority.create(TlsFiles(tmp_path / "other-ca"), instance="other")
        foreign = other.issue_client(f"{CUSTOMER}.oven-1", tmp_path / "foreign")
        # The gateway's start waited for the TLS listener without connecting to it: a probe
        # connection would have been logged as a refused certificate. Mosquitto logs in order,
        # so the wrong password seen above is a fence for anything the start left in the log.
        assert tls_refusals(h) == 0
        for seen, issued in enumerate((expired, foreign), start=1):
            (issued.cert_file.parent / "ca.crt").write_bytes((tls / "ca.crt").read_bytes())
            conn = MqttConnection(tls_endpoint(h, f"{CUSTOMER}.oven-1", issued.cert_file.parent))
            with pytest.raises(MqttError):
                await conn.open(timeout=5)
            await conn.close()
            # Whichever of its two log forms Mosquitto used (gateway/devices/refusals.py), each
            # refused handshake is counted, once.
            await wait_refusals(h, "tls_refused", seen)
        await refused_login(wrong)
        await wait_refusals(h, "bad_credentials", 3)  # a fence: every line before it was read
        assert tls_refusals(h) == 2
        # nothing of it reached the pipeline
        assert h.gateway.pipeline is not None
        assert h.gateway.pipeline.stats.received == 0
        text = render_status(h.gateway.status())
        assert "refusals at the device broker" in text
        assert f"denied_publish   {CUSTOMER}.oven-1" in text
        assert "bakery/oven-2/telemetry" in text
        assert "certificate verify failed" in text
        assert "bad_credentials" in text
