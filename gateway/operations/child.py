"""``einblick run`` as a child process, for the demo, the benchmark and the tests that kill it.

Starting it is the easy half; knowing when it is ready is the half every caller got slightly
different: the control socket appears before the device broker is connected, and a gateway that
dies on a bad config must be reported at once with its log, not after a 30-second timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.operations.control import ControlError, request
from gateway.operations.status_model import Status

__all__ = ["start_gateway", "stop_gateway"]


async def start_gateway(
    config_path: Path,
    log_path: Path,
    *,
    options: tuple[str, ...] = (),
    upstreams: bool = False,
    timeout: float = 30.0,
    spawned: Callable[[int], None] | None = None,
    module: str = "gateway",
) -> asyncio.subprocess.Process:
    """Start ``python -m gateway [options] run --config CONFIG``, its output appended to
    ``log_path``; return once its status says the device broker is connected (and, with
    ``upstreams``, every recipient's link too). GatewayError, with the log's tail, if it exits
    or is not ready within ``timeout`` seconds; the process is then stopped. ``spawned`` is
    called with the process id as soon as it exists, before the gateway is ready (e.g. to limit
    its CPU from its start-up on). ``module``: another entry point that runs the gateway (the
    stage benchmark's timed one, gateway/bench/stage_probe.py)."""
    control_socket = load_config(config_path).control_socket
    with log_path.open("ab") as handle:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *options,
            "run",
            "--config",
            str(config_path),
            stdout=handle,
            stderr=handle,
            stdin=asyncio.subprocess.DEVNULL,
        )
    try:
        if spawned is not None:
            spawned(process.pid)
        async with asyncio.timeout(timeout):
            while process.returncode is None:
                with contextlib.suppress(ControlError):
                    status = Status.read(await request(control_socket, "status", timeout=2))
                    if status.device_broker.connected and (
                        not upstreams or all(u.connected for u in status.upstreams)
                    ):
                        return process
                await asyncio.sleep(0.05)
    except TimeoutError:
        await stop_gateway(process)
        raise GatewayError(
            f"the gateway was not ready within {timeout:.0f} s; its log ({log_path}) ends:\n"
            + _tail(log_path)
        ) from None
    except BaseException:
        # Cancelled (a caller's timeout, a failing sibling task): the caller never gets the
        # process, so nobody else would stop it and its Mosquitto.
        await asyncio.shield(stop_gateway(process))
        raise
    raise GatewayError(
        f"the gateway exited with code {process.returncode}; its log ({log_path}) ends:\n"
        + _tail(log_path)
    )


async def stop_gateway(process: asyncio.subprocess.Process, timeout: float = 20.0) -> int:
    """SIGTERM (the gateway signs its last checkpoint and stops in order), SIGKILL after
    ``timeout`` seconds; returns the exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-size:]
    except OSError as exc:
        return f"(cannot read it: {exc})"
