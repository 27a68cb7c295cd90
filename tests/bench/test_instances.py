"""``einblick bench --instances``: a small run of two instances forwards the whole backlog, and
a run that fails half-way leaves no instance running and no control group behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.bench.cpu_quota import CpuQuota, QuotaError
from gateway.bench.instances import CUSTOMERS, _limit_each, _start_together, run_instances
from gateway.errors import ConfigError
from gateway.log.reader import Reader
from gateway.operations.child import stop_gateway
from gateway.operations.scaffold import InitOptions, init_directory


async def test_two_instances_drain_the_whole_backlog_and_the_rate_is_measured(
    tmp_path: Path,
) -> None:
    # Enough messages that their cost (~60-90 us each) stands well above the spread of the
    # instances' start-up, which the figure subtracts (~0.1 s on a loaded machine).
    result = await run_instances(tmp_path, 2, 6000)
    assert (result.instances, result.messages, result.arrived) == (2, 6000, 6000)
    assert result.seconds > 0 and result.per_second == result.arrived / result.seconds
    # Deciding, logging and forwarding 6,000 messages costs the instances CPU beyond their
    # start-up (~0.4 s), and the brokers carried each message twice (in, and forwarded).
    assert result.instances_cpu_s > 0 and result.brokers_cpu_s > 0
    assert result.us_per_message(result.instances_cpu_s) == result.instances_cpu_s / 6000 * 1e6
    # Each instance logged only the customers dealt to it: every other one.
    for offset, name in enumerate(("hall-1", "hall-2")):
        reader = Reader.open(tmp_path / name / "data" / "einblick.db")
        assert set(reader.chain_names().values()) == set(CUSTOMERS[offset::2])
        reader.close()


async def test_an_instance_that_fails_to_start_leaves_its_siblings_to_be_stopped(
    tmp_path: Path,
) -> None:
    good = init_directory(InitOptions(tmp_path / "hall-1"))
    broken = tmp_path / "hall-2" / "einblick.yaml"  # no such file: fails at once
    processes: list[asyncio.subprocess.Process] = []
    try:
        with pytest.raises(ConfigError):
            await _start_together([good, broken], [None, None], processes)
        # the one that started is the caller's to stop, not left running unseen
        (started,) = processes
        assert started.returncode is None
    finally:
        for process in processes:
            await stop_gateway(process)


def test_a_control_group_that_cannot_be_set_up_leaves_the_earlier_ones_to_be_removed(
    tmp_path: Path,
) -> None:
    configs = [tmp_path / n / "einblick.yaml" for n in ("hall-1", "hall-2")]
    cgroups = tmp_path / "cgroup"
    cgroups.mkdir()
    first, second = (f"einblick-bench-{os.getpid()}-{p.parent.name}" for p in configs)
    (cgroups / second).write_text("")  # a file where the group's folder goes
    quotas: list[CpuQuota] = []
    with pytest.raises(QuotaError):
        _limit_each(configs, 0.25, quotas, root=cgroups, version=2)
    (made,) = quotas
    assert made.path == cgroups / first
