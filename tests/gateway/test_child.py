"""Starting ``einblick run`` as a child: a gateway that cannot start is reported at once, with
what its log says, not after a timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.operations.child import start_gateway
from gateway.operations.scaffold import InitOptions, init_directory


async def test_a_gateway_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    config_path = init_directory(InitOptions(tmp_path / "edge"))
    database = load_config(config_path).database_path
    database.mkdir(parents=True)  # a directory where the database file should be
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        await start_gateway(config_path, tmp_path / "gateway.log", timeout=60)
    assert time.monotonic() - started < 30  # the exit was noticed, the timeout not waited out
    message = str(caught.value)
    assert "the gateway exited with code 2" in message
    # The installer's line from the gateway itself, not a traceback.
    assert f"einblick: {database}: cannot open the database" in message
    assert "Traceback" not in message
