"""The policy engine's benchmark (gateway/bench/policies.py) on a small run: it evaluates the
mix it describes through the real engine (every kind decides, the badge and the unknown device
release nothing, the meter's windows close at the end), times the engine and the JSON baseline
in the same run, and prints each figure."""

from __future__ import annotations

import pytest

from gateway.bench.policies import MIX, main, run


def test_a_run_decides_the_whole_mix_and_times_both() -> None:
    figures = run(len(MIX) * 50)
    assert figures["messages"] == len(MIX) * 50
    # Every message that reaches a customer's device gets one decision per recipient of its
    # customer; the unknown device gets one too (withheld), so there are at least as many
    # decisions as messages, and some are released but not all (badges never leave).
    assert figures["decisions"] >= figures["messages"]
    assert 0 < figures["released"] < figures["decisions"]
    assert figures["flushed"] >= 1  # the meter's aggregation windows, closed after the run
    assert figures["engine_s"] > 0 and figures["baseline_s"] > 0


def test_the_same_run_gives_the_same_decisions() -> None:
    a, b = run(400), run(400)
    for key in ("decisions", "released", "flushed"):
        assert a[key] == b[key], key


def test_main_prints_every_figure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["gateway.bench.policies", "--messages", "800"])
    main()
    out = capsys.readouterr().out
    assert f"messages:                   800  (mix of {len(MIX)} kinds)" in out
    for line in ("decisions/s", "messages/s", "µs/message", "json.loads+dumps:", "flushed"):
        assert line in out, line
