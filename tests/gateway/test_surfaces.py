"""The control socket and the metrics port open and close together; a metrics port that cannot
be bound leaves no control socket behind. Real sockets throughout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.config.runtime import MetricsConfig
from gateway.devices.ports import free_port
from gateway.operations import control_model as ops
from gateway.operations.control import GatewayNotRunning, Handler, ask
from gateway.operations.status_model import Status
from gateway.operations.surfaces import Surfaces
from tests.gateway.edge import edge_config


def _no_status() -> Status:
    raise AssertionError("the status is not read in these tests")


def _handlers() -> Mapping[str, Handler]:
    return {}  # what the socket answers is tests/gateway/test_control.py's: here, that it is up


def _with_metrics(config: Config, port: int) -> Config:
    return config.model_copy(update={"metrics": MetricsConfig(enabled=True, port=port)})


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_both_open_inside_and_both_close_on_the_way_out(tmp_path: Path) -> None:
    port = free_port()  # free now, held by nobody
    config = _with_metrics(edge_config(tmp_path, {}), port)
    async with Surfaces(config, _handlers(), _no_status) as surfaces:
        assert config.control_socket.exists()
        _, writer = await asyncio.open_unix_connection(str(config.control_socket))
        writer.close()
        await writer.wait_closed()
        assert not await _refused(port)
        assert surfaces.metrics is not None
    assert not config.control_socket.exists()
    assert await _refused(port)


async def test_without_metrics_only_the_control_socket_opens(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {})
    assert not config.metrics.enabled
    async with Surfaces(config, _handlers(), _no_status) as surfaces:
        assert surfaces.metrics is None and config.control_socket.exists()
    assert not config.control_socket.exists()


async def test_a_taken_metrics_port_stops_the_start_and_closes_the_control_socket(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = _with_metrics(edge_config(tmp_path, {}), taken.getsockname()[1])
        with pytest.raises(OSError):
            async with Surfaces(config, _handlers(), _no_status):
                raise AssertionError("the surfaces opened on a taken port")
    assert not config.control_socket.exists()
    with pytest.raises(GatewayNotRunning):
        await ask(config.control_socket, ops.STATUS, timeout=2)
