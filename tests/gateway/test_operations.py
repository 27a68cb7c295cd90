"""What an installer sees: `einblick status` and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from gateway.devices.ports import free_port
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = (await reader.read()).decode()
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    return head.splitlines()[0], body


async def test_status_command_and_metrics_show_the_running_gateway(tmp_path: Path) -> None:
    port = free_port()
    edits = {"enabled: false": f"enabled: true\n  port: {port}"}
    async with running_gateway(
        tmp_path,
        {"bakery.yaml": BAKERY},
        [("baeckerei-schmidt", "oven-1", "Backofen 1")],
        config_edits=edits,
    ) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 20.0}', 1)
        await h.cloud.wait_for(1)
        await oven.close()
        status_line, body = await _get(port, "/metrics")
        assert status_line == "HTTP/1.1 200 OK"
        assert "einblick_messages_received_total 1" in body
        assert 'einblick_upstream_connected{recipient="oven-maker"} 1' in body
        # How long the message took inside the gateway, per stage.
        samples = {
            line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in body.splitlines()
            if line.startswith("einblick_latency_seconds{")
        }
        decided = 'einblick_latency_seconds{stage="received_to_committed",quantile="0.99"}'
        acked = (
            'einblick_latency_seconds{stage="outbox_to_acknowledged",'
            'recipient="oven-maker",quantile="0.99"}'
        )
        assert 0 < samples[decided] < 10 and 0 < samples[acked] < 10
        assert not any("logistics" in key for key in samples)  # sent nothing: no figure invented
        assert (await _get(port, "/other"))[0] == "HTTP/1.1 404 Not Found"
        config = h.directory / "einblick.yaml"
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "status", "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "device broker: connected" in result.stdout
        assert "oven-maker" in result.stdout and "connected; outbox 0, sent 1" in result.stdout
        assert "baeckerei-schmidt" in result.stdout
        assert "received → committed: p50 " in result.stdout
        assert "outbox → acknowledged: p50 " in result.stdout
    # Once the gateway is gone, status says so plainly and exits non-zero.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "the gateway is not running" in result.stderr
