"""The portal as a child of ``einblick run``: its own process (its own memory, its own crashes,
no signing key in its address space), started when ``portal:`` is configured and restarted with
the one jittered backoff if it exits; stopped with the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from gateway.backoff import Backoff

__all__ = ["supervise_portal"]

log = logging.getLogger("einblick.portal")


async def supervise_portal(config_path: Path) -> None:
    """Run ``python -m gateway portal --config CONFIG`` until cancelled; its output goes to the
    gateway's stderr (the journal)."""
    backoff = Backoff(1.0, 60.0)
    while True:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "portal", "--config", str(config_path)
        )
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            raise
        log.warning("the customer portal exited with code %s; starting it again", code)
        await backoff.sleep()
