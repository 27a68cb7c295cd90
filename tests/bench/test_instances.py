"""``einblick bench --instances``: a small run of two instances forwards the whole backlog, so
does the plain paho forwarder the instances are held to, and a run that fails half-way leaves
no instance running and no control group behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.bench.cpu_quota import CpuQuota, QuotaError
from gateway.bench.instances import (
    CUSTOMERS,
    InstancesResult,
    _limit_each,
    _row,
    _Site,
    _start_forwarder,
    _start_together,
    _stop_forwarder,
    run_forwarder,
    run_instances,
)
from gateway.errors import ConfigError
from gateway.log.reader import Reader
from gateway.operations.child import stop_gateway
from gateway.operations.scaffold import InitOptions, init_directory


async def test_two_instances_drain_the_whole_backlog_and_the_rate_is_measured(
    tmp_path: Path,
) -> None:
    # Enough messages that their cost (~60-90 us each, ~1.5 s in all) stands well above the
    # spread of the instances' start-up, which the figure subtracts: up to ~0.5 s when another
    # test loads the other core (6,000 messages once measured -0.04 s in a parallel run).
    result = await run_instances(tmp_path, 2, 18_000)
    assert (result.instances, result.messages, result.arrived) == (2, 18_000, 18_000)
    assert result.seconds > 0 and result.per_second == result.arrived / result.seconds
    # Deciding, logging and forwarding 18,000 messages costs the instances CPU beyond their
    # start-up (~0.4 s), and the brokers carried each message twice (in, and forwarded).
    assert result.instances_cpu_s > 0 and result.brokers_cpu_s > 0
    assert result.us_per_message(result.instances_cpu_s) == result.instances_cpu_s / 18_000 * 1e6
    # Each instance logged only the customers dealt to it: every other one.
    for offset, name in enumerate(("hall-1", "hall-2")):
        reader = Reader.open(tmp_path / name / "data" / "einblick.db")
        assert set(reader.chain_names().values()) == set(CUSTOMERS[offset::2])
        reader.close()


async def test_the_plain_forwarder_drains_the_same_backlog_through_its_persistent_session(
    tmp_path: Path,
) -> None:
    result = await run_forwarder(tmp_path, 18_000)  # enough to stand above start-up's spread
    # Every message published while it was stopped reached the cloud: the backlog queued for
    # its session, as for the instances' sessions, so both figures measure a drain.
    assert (result.system, result.instances, result.messages, result.arrived) == (
        "forwarder",
        1,
        18_000,
        18_000,
    )
    assert result.per_second == result.arrived / result.seconds
    assert result.instances_cpu_s > 0 and result.brokers_cpu_s > 0


def test_each_row_holds_its_rate_against_the_forwarder_of_the_same_run() -> None:
    baseline = InstancesResult(1, 6000, 6000, 3.0, 2000.0, 0.5, 0.2, system="forwarder")
    two = InstancesResult(2, 6000, 6000, 1.0, 5000.0, 0.6, 0.2, throttled=(1.0, 0.98))
    row = _row("2 Einblick instances", two, baseline)
    assert " 2.50x " in row and row.endswith("100% 98%")
    assert " 1.00x " in _row("plain paho forwarder", baseline, baseline)


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


async def test_a_forwarder_that_cannot_start_is_the_callers_to_stop_and_says_why(
    tmp_path: Path,
) -> None:
    site = _Site(tmp_path)  # its brokers never started: nothing listens on their ports
    processes: list[asyncio.subprocess.Process] = []
    with pytest.raises(RuntimeError, match="the baseline forwarder did not start"):
        await _start_forwarder(site, processes)
    (started,) = processes  # handed over before it was known to fail
    await _stop_forwarder(started)
    assert started.returncode is not None
