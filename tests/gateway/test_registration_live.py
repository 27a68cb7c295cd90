"""A registration on a running gateway takes effect at once, in the policy engine as well as in
the broker: `einblick device add|rotate|remove` through the real CLI against a running gateway
and real Mosquitto, then the pasted mosquitto_pub line, then the decision in the log."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from gateway.log.reader import LogReader
from gateway.messages.endpoint import Endpoint, MqttError
from gateway.messages.mqtt import MqttConnection
from tests.gateway.harness import Harness, running_gateway
from tests.gateway.test_devices import BAKERY, CUSTOMER, run, section


async def cli(h: Harness, *args: str) -> tuple[int, str, str]:
    """The real CLI in a child process (the gateway answers its control socket from this test's
    event loop): exit code, stdout, stderr."""
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
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def decisions(h: Harness) -> list[tuple[str | None, str | None, str | None]]:
    """(customer, device, outcome) of every decision entry in the log, oldest first."""
    reader = await LogReader.open(h.gateway.config.database_path)
    try:
        rows = await reader.page(limit=1000)
        return [(r.customer, r.device, r.outcome) for r in reversed(rows) if r.kind == "decision"]
    finally:
        await reader.close()


async def wait_decisions(h: Harness, count: int) -> list[tuple[str | None, str | None, str | None]]:
    await h.wait_committed(count)
    return await decisions(h)


async def test_a_device_added_while_running_is_decided_from_its_first_message(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, []) as h:
        code, snippet, err = await cli(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Backofen 3", "--id", "oven-3"
        )
        assert code == 0, err
        assert "the running gateway admitted it" in err and "bakery.yaml" in err, err
        code, out = await run("bash", "-c", section(snippet, "mosquitto_pub:"))
        assert code == 0, out
        await h.cloud.wait_for(1)
        assert h.cloud.received[0].topic == f"ovens/{CUSTOMER}/oven-3/telemetry"
        assert h.cloud.payloads() == [{"temperature": 21.5}]
        assert await wait_decisions(h, 1) == [(CUSTOMER, "oven-3", "shared")]


async def test_a_rotated_device_is_still_decided_and_a_removed_one_no_longer(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, []) as h:
        code, _, err = await cli(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Backofen 3", "--id", "oven-3"
        )
        assert code == 0, err
        code, snippet, err = await cli(
            h, "device", "rotate", "--customer", CUSTOMER, "--id", "oven-3"
        )
        assert code == 0 and "the running gateway admitted it" in err, err
        code, out = await run("bash", "-c", section(snippet, "mosquitto_pub:"))
        assert code == 0, out
        await h.cloud.wait_for(1)
        assert await wait_decisions(h, 1) == [(CUSTOMER, "oven-3", "shared")]

        code, _, err = await cli(h, "device", "remove", "--customer", CUSTOMER, "--id", "oven-3")
        assert code == 0, err
        assert "no longer decides its messages" in err, err
        policy = h.gateway.engine.policy(CUSTOMER)
        assert policy is not None and policy.device("oven-3") is None
        password = section(snippet, "mosquitto_pub:").split("-P '")[1].split("'")[0]
        gone = MqttConnection(
            Endpoint(
                "127.0.0.1",
                h.port,
                f"{CUSTOMER}.oven-3",
                username=f"{CUSTOMER}.oven-3",
                password=password,
            )
        )
        with pytest.raises(MqttError, match=r"not authorised|bad user name"):
            await gone.open()
        await gone.close()


async def test_a_certificate_device_without_a_running_tls_listener_is_not_claimed_to_work(
    tmp_path: Path,
) -> None:
    """The file gains a TLS listener after the gateway started: the certificate is issued, but
    the command says the running broker refuses it until a restart, and exits non-zero."""
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, []) as h:
        path = h.directory / "einblick.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("# tls_port: 8883     ", "tls_port: 18883   ").replace(
                "require_client_cert: false", "require_client_cert: true"
            ),
            encoding="utf-8",
        )
        code, _, err = await cli(
            h,
            "device",
            "add",
            "--customer",
            CUSTOMER,
            "--name",
            "Ofen 4",
            "--id",
            "oven-4",
            "--cert",
        )
        assert code == 1, err
        assert "no TLS listener" in err and "restart" in err, err
        assert "admitted" not in err
