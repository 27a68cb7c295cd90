"""`einblick run` as systemd runs it (a real process, real Mosquitto): the block it prints at
start says what runs, and SIGHUP reloads einblick.yaml instead of stopping the gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from importlib.metadata import version
from pathlib import Path

from gateway.devices.ports import free_port
from gateway.log.keys import Signer
from gateway.operations.scaffold import InitOptions, init_directory
from tests.gateway.test_devices import BAKERY

BROKEN = """einblick_policy: 1
customer: sued
name: Süd
colour: blue
grants: []
"""


async def read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> str:
    """Lines of ``stream`` up to and including the first that contains ``marker``."""
    async with asyncio.timeout(30):
        while True:
            raw = await stream.readline()
            assert raw, "the gateway ended its stderr:\n" + "".join(seen)
            line = raw.decode()
            seen.append(line)
            if marker in line:
                return "".join(seen)


async def test_run_prints_what_it_started_and_sighup_reloads(tmp_path: Path) -> None:
    directory = tmp_path / "box"
    port, tls_port = free_port(), free_port()
    config = init_directory(
        InitOptions(
            directory=directory,
            instance="backstube-7",
            broker_port=port,
            tls_port=tls_port,
            upstream_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody there: forwarders retry
        )
    )
    for old in (directory / "policies").glob("*.yaml"):
        old.unlink()
    (directory / "policies" / "bakery.yaml").write_text(BAKERY, encoding="utf-8")
    (directory / "policies" / "sued.yaml").write_text(BROKEN, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--config",
        str(config),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        block = await read_until(process.stderr, "  logs ", seen)
        fingerprint = Signer.load(directory / "data" / "keys" / "signing.key").fingerprint
        expected = [
            f"Einblick {version('einblick')} is running as instance backstube-7",
            f"  configuration  {config.resolve()}",
            f"  data           {(directory / 'data').resolve()}",
            f"mqtt://127.0.0.1:{port} (plain, device passwords)",
            f"mqtts://127.0.0.1:{tls_port} (TLS, device passwords)",
            f"  control        {(directory / 'data' / 'control.sock').resolve()}",
            "  metrics        off",
            "  policies       1 running, 1 NOT RUNNING",
            "    baeckerei-schmidt: ",
            f"    NOT RUNNING {(directory / 'policies' / 'sued.yaml').resolve()}:4",
            "oven-maker -> mqtt://127.0.0.1:",
            f"  signing key    fingerprint {fingerprint}",
            "journalctl -u einblick",
        ]
        missing = [text for text in expected if text not in block]
        assert not missing, f"missing {missing} in:\n{block}"

        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace(
                "  checkpoint_interval_s:", "  device_max_rate: 9.0\n  checkpoint_interval_s:"
            ),
            encoding="utf-8",
        )
        process.send_signal(signal.SIGHUP)
        reloaded = await read_until(process.stderr, "pipeline.device_max_rate", seen)
        assert "applied  pipeline.device_max_rate: 100.0 -> 9.0" in reloaded, reloaded
        assert process.returncode is None  # SIGHUP reloads; it no longer stops the gateway
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.stderr.read()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
