"""A real witness process on loopback: ``einblick witness init`` then ``witness serve``."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gateway.log.note import Verifier
from gateway.witness.directory import init_witness

_LISTENING = re.compile(r"listening on (\S+)/add-checkpoint")


@dataclass
class WitnessProcess:
    directory: Path
    vkey: str
    url: str  # the submission prefix: POST {url}/add-checkpoint
    process: asyncio.subprocess.Process
    stderr: list[str]

    @property
    def verifier(self) -> Verifier:
        return Verifier.parse(self.vkey)

    def follow(self, origin: str, *vkeys: str) -> None:
        """Add one log to the followed-logs file."""
        path = self.directory / "logs.yaml"
        data = yaml.safe_load(path.read_text()) or {}
        logs = [entry for entry in data.get("logs") or [] if entry["origin"] != origin]
        logs.append({"origin": origin, "keys": list(vkeys)})
        self.write_logs(yaml.safe_dump({"logs": logs}))

    def write_logs(self, text: str) -> None:
        """Replace the followed-logs file; the running witness reads it at the next request."""
        path = self.directory / "logs.yaml"
        path.write_text(text)
        # A new mtime even within the file system's timestamp granularity.
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


async def einblick(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def start_witness(
    directory: Path, *, name: str = "witness.example/w1", port: int = 0, init: bool = True,
    extra: tuple[str, ...] = (),
) -> WitnessProcess:  # fmt: skip
    # ``einblick witness init`` itself is tested once (test_commands.py); here its function.
    vkey = init_witness(directory, name).vkey if init else (directory / "vkey").read_text()
    (directory / "vkey").write_text(vkey)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "witness", "serve", "--dir", str(directory),
        "--listen", f"127.0.0.1:{port}", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while True:  # wait for the line it prints once its socket is bound
            line = (await proc.stderr.readline()).decode()
            if not line:
                raise AssertionError("the witness exited before listening:\n" + "".join(lines))
            lines.append(line)
            if match := _LISTENING.search(line):
                url = match.group(1)
                break
    return WitnessProcess(directory, vkey, url, proc, lines)


WitnessFactory = Callable[..., Awaitable[WitnessProcess]]


@pytest.fixture
async def witnesses(tmp_path: Path) -> AsyncIterator[WitnessFactory]:
    started: list[WitnessProcess] = []

    async def start(label: str = "w1", **options: object) -> WitnessProcess:
        witness = await start_witness(tmp_path / label, **options)  # type: ignore[arg-type]
        started.append(witness)
        return witness

    yield start
    for witness in started:
        await witness.stop()
