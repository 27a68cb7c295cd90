"""The stage probe's parts (gateway/bench/stage_probe.py), without installing it in this process:
every stage it times exists where it says, a timed call counts only while counting is on (also
when it raises), loop callbacks are named by what they run, and its own cost is measured.
tests/bench/test_stages.py runs it in a real gateway."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys

import pytest

from gateway.bench import stage_probe
from gateway.bench.stage_probe import STAGES, _calibrate, _counts, _handle_name, _timed


def test_every_stage_names_a_function_that_exists() -> None:
    for label, module_name, owner_name, attribute in STAGES:
        owner = importlib.import_module(module_name)
        if owner_name:
            owner = getattr(owner, owner_name)
        function = getattr(owner, attribute, None)
        assert callable(function), label
        # A coroutine function's time would be its awaits': only plain calls are timed.
        assert not inspect.iscoroutinefunction(function), label


def test_a_timed_call_counts_only_while_counting_is_on_and_also_when_it_raises() -> None:
    def fails() -> None:
        raise ValueError("no")

    timed_ok = _timed("test ok", lambda: 7)
    timed_fails = _timed("test fails", fails)
    try:
        assert timed_ok() == 7
        assert "test ok" not in _counts.calls
        _counts.on = True
        assert timed_ok() == 7
        with pytest.raises(ValueError, match="no"):
            timed_fails()
        assert _counts.calls["test ok"] == 1
        assert _counts.calls["test fails"] == 1
        assert _counts.cpu["test ok"] >= 0
    finally:
        _counts.on = False
        _counts.calls.clear()
        _counts.cpu.clear()


async def test_loop_callbacks_are_named_by_what_they_run() -> None:
    class Pump:
        def read(self) -> None:
            return None

    async def writer() -> None:
        await asyncio.sleep(0)

    loop = asyncio.get_running_loop()
    handle = asyncio.events.Handle(Pump().read, (), loop)
    assert _handle_name(handle).endswith("Pump.read")
    task = loop.create_task(writer())
    step = loop._ready[-1]  # type: ignore[attr-defined]  # the task's first step, just scheduled
    assert _handle_name(step).startswith("task:") and _handle_name(step).endswith("writer")
    await task


def test_its_own_cost_is_measured_and_leaves_no_counts() -> None:
    overhead = _calibrate()
    assert overhead > 0
    assert not _counts.on
    assert not _counts.calls and not _counts.cpu


def test_without_a_report_path_it_says_how_to_run_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["stage_probe"])
    assert stage_probe.main() == 2
    assert "usage: python -m gateway.bench.stage_probe REPORT.json run" in capsys.readouterr().err
