"""``einblick bench --instances``: a small run of two instances forwards the whole backlog."""

from __future__ import annotations

from pathlib import Path

from gateway.bench.instances import CUSTOMERS, run_instances
from gateway.log.reader import Reader


async def test_two_instances_drain_the_whole_backlog_and_the_rate_is_measured(
    tmp_path: Path,
) -> None:
    result = await run_instances(tmp_path, 2, 1800)
    assert (result.instances, result.messages, result.arrived) == (2, 1800, 1800)
    assert result.seconds > 0 and result.per_second == result.arrived / result.seconds
    # Deciding, logging and forwarding 1,800 messages costs the instances CPU beyond their
    # start-up (~0.1 s here, the start-up's spread ~0.04 s), and the brokers carried each
    # message twice (in, and forwarded).
    assert result.instances_cpu_s > 0 and result.brokers_cpu_s > 0
    assert result.us_per_message(result.instances_cpu_s) == result.instances_cpu_s / 1800 * 1e6
    # Each instance logged only the customers dealt to it: every other one.
    for offset, name in enumerate(("hall-1", "hall-2")):
        reader = Reader.open(tmp_path / name / "data" / "einblick.db")
        assert set(reader.chain_names().values()) == set(CUSTOMERS[offset::2])
        reader.close()
