"""``einblick bench --instances``: a small run of two instances forwards the whole backlog."""

from __future__ import annotations

from pathlib import Path

from gateway.bench.instances import CUSTOMERS, run_instances
from gateway.log.reader import Reader


async def test_two_instances_drain_the_whole_backlog_and_the_rate_is_measured(
    tmp_path: Path,
) -> None:
    result = await run_instances(tmp_path, 2, 600)
    assert (result.instances, result.messages, result.arrived) == (2, 600, 600)
    assert result.seconds > 0 and result.per_second == result.arrived / result.seconds
    # Each instance logged only the customers dealt to it: every other one.
    for offset, name in enumerate(("hall-1", "hall-2")):
        reader = Reader.open(tmp_path / name / "data" / "einblick.db")
        assert set(reader.chain_names().values()) == set(CUSTOMERS[offset::2])
        reader.close()
