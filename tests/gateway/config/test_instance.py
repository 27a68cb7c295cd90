"""One gateway per data directory, and a name for each box that no other box has."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import NAME, box_instance, host_part, load_config
from gateway.operations.control import request
from gateway.operations.lock import DirectoryLock, DirectoryLocked
from gateway.operations.scaffold import InitOptions, init_directory
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY


async def test_a_second_gateway_on_the_same_data_directory_exits_and_names_the_first(
    tmp_path: Path,
) -> None:
    async with running_gateway(
        tmp_path, {"bakery.yaml": BAKERY}, [("baeckerei-schmidt", "oven-1", "Backofen 1")]
    ) as h:
        config = h.directory / "einblick.yaml"
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert f"pid {os.getpid()}" in result.stderr  # the harness runs the first one in-process
        assert f"instance {h.gateway.config.instance}" in result.stderr
        assert "running since" in result.stderr and "einblick.lock" in result.stderr
        assert "Traceback" not in result.stderr
        # The first one is untouched: its control socket still answers.
        status = await request(h.gateway.config.control_socket, "status")
        assert status["instance"] == h.gateway.config.instance


def test_the_lock_is_released_with_its_holder(tmp_path: Path) -> None:
    first = DirectoryLock(tmp_path, "box-a")
    first.acquire()
    with pytest.raises(DirectoryLocked, match="instance box-a"):
        DirectoryLock(tmp_path, "box-b").acquire()
    first.release()
    with DirectoryLock(tmp_path, "box-b"):  # a stopped gateway leaves nothing in the way
        pass


def test_init_gives_every_box_its_own_name_and_keeps_it(tmp_path: Path) -> None:
    names = {
        load_config(init_directory(InitOptions(directory=tmp_path / name))).instance
        for name in ("a", "b", "c")
    }
    assert len(names) == 3, names
    for name in names:
        assert NAME.match(name) and name.startswith(host_part() + "-"), name
    # Re-running init with --force keeps the box's name: the log's origin carries it.
    config = tmp_path / "a" / "einblick.yaml"
    before = load_config(config).instance
    init_directory(InitOptions(directory=tmp_path / "a", force=True))
    assert load_config(config).instance == before


def test_a_configuration_without_a_name_gets_this_box_s_stable_name(tmp_path: Path) -> None:
    path = tmp_path / "einblick.yaml"
    path.write_text("einblick_config: 1\n", encoding="utf-8")
    instance = load_config(path).instance
    assert instance != "edge-01" and NAME.match(instance), instance
    assert instance == box_instance() == load_config(path).instance
