"""The operator's two surfaces on a running gateway: the control socket (status, consent,
erasure, reload) and, when configured, the metrics port — opened and closed together.

Opened after the log and the broker are up and closed before the last checkpoint, so neither
answers for a gateway that is not running. A metrics port that cannot be bound (another
process has it) stops the start like any other start-up failure, and the control socket opened
just before is closed again: no socket file is left that answers "running" for a gateway that
never ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from gateway.config import Config
from gateway.operations.control import ControlServer, Handler
from gateway.operations.metrics import MetricsServer
from gateway.operations.status_model import Status

__all__ = ["Surfaces"]


class Surfaces:
    """``async with Surfaces(...)``: both open inside, both closed on the way out."""

    def __init__(
        self, config: Config, handlers: Mapping[str, Handler], status: Callable[[], Status]
    ) -> None:
        self.control = ControlServer(config.control_socket, handlers)
        self.metrics = (
            MetricsServer(config.metrics.host, config.metrics.port, status)
            if config.metrics.enabled
            else None
        )

    async def __aenter__(self) -> Surfaces:
        await self.control.start()
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except BaseException:
                await self.control.close()
                raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.control.close()
        finally:
            if self.metrics is not None:
                await self.metrics.close()
