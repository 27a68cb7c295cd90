"""The portal's benchmark (gateway/bench/portal.py) in miniature: two sessions against the whole
box at a low rate, one phase each way, the sessions in a process of their own. The figures it prints are real measurements: pages came
back 200, live events arrived with a lag, nothing was lost either way."""

from __future__ import annotations

import re

import pytest

from gateway.bench.portal import run


async def test_the_benchmark_measures_pages_live_lag_and_the_gateway_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run(sessions=2, rate=100.0, phase_s=3.0, rounds=1) == 0
    out = capsys.readouterr().out
    pages = re.search(r"pages: (\d+) fetched, (\d+) not 200", out)
    assert pages is not None and int(pages.group(1)) >= 4 and pages.group(2) == "0", out
    live = re.search(r"live: (\d+) events; lag behind commit p50 (\d+) ms", out)
    assert live is not None and int(live.group(1)) > 0, out
    assert re.search(r"gateway without: [\d,]+ msg/s arrived, lost 0", out), out
    assert re.search(r"gateway with   : [\d,]+ msg/s arrived, lost 0", out), out
    assert re.search(r"-?\d+ KiB per live session", out), out
    for name in ("without", "with"):
        assert re.search(rf"gateway p99 {name} +the sessions: median [\d.]+ ms \(range", out), out
    assert re.search(r"gateway p99 added by the portal \(median with − median without\)", out)
