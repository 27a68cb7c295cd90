"""The systems ``einblick bench`` measures (gateway/bench/systems.py): each Einblick variant is the
gateway with the benchmark's own settings and its wake interval, and the benchmark customer's
policy compiles for the load's devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bench import systems
from gateway.config import load_config
from policies.loader import load_policy_text


@pytest.mark.parametrize(
    ("system", "interval"),
    [("einblick", 2.0), ("einblick-unpaced", 0.0), ("einblick-wake10", 10.0)],
)
async def test_the_unpaced_system_is_the_gateway_with_pacing_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system: str, interval: float
) -> None:
    started: list[Path] = []

    async def start(config_path: Path, log_path: Path, **_: object) -> None:
        started.append(config_path)  # the configuration only: no gateway is run

    monkeypatch.setattr(systems, "start_gateway", start)
    await systems.System(system, tmp_path)._start_einblick()
    (config_path,) = started
    config = load_config(config_path)
    assert config.pipeline.wake_interval_ms == interval
    assert config.pipeline.device_max_rate == 1000000  # the bench's own settings kept


def test_the_bench_policy_names_each_load_device_for_the_cloud() -> None:
    policy = load_policy_text(systems.bench_policy(3))
    assert [device.id for device in policy.devices] == ["load-0000", "load-0001", "load-0002"]
    assert [grant.recipient for grant in policy.grants] == ["cloud"]
