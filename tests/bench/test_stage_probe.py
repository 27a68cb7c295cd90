"""The stage probe's parts (gateway/bench/stage_probe.py), without installing it in this process:
every stage it times exists where it says, a timed call counts only while counting is on (also
when it raises), loop callbacks are named by what they run, and its own cost is measured.
tests/bench/test_stages.py runs it in a real gateway."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bench import stage_probe
from gateway.bench.stage_probe import (
    BATCHES,
    DECIDE,
    STAGES,
    Stage,
    StageFigure,
    StageReport,
    _batch,
    _calibrate,
    _counts,
    _handle_name,
    _timed,
    _write_report,
)
from gateway.messages.handoff import HelperThread


def _found(stage: Stage) -> object:
    owner = importlib.import_module(stage.module)
    if stage.owner:
        owner = getattr(owner, stage.owner)
    return inspect.getattr_static(owner, stage.attribute, None)


def test_every_stage_names_a_plain_function_that_exists() -> None:
    labels = {stage.label for stage in STAGES}
    for stage in STAGES:
        function = _found(stage)
        # Replaced by a plain function: a staticmethod or classmethod would lose its binding.
        assert inspect.isfunction(function), stage.label
        # A coroutine function's time would be its awaits': only plain calls are timed.
        assert not inspect.iscoroutinefunction(function), stage.label
        assert stage.part_of is None or stage.part_of in labels, stage.label
    assert inspect.iscoroutinefunction(_found(BATCHES))


def _step(label: str, function: Callable[[], object], part_of: str | None = None) -> Any:
    return _timed(label, function, stage=Stage(label, "tests", "", "step", part_of))


def _reset_counts() -> None:
    _counts.on = False
    _counts.calls.clear()
    _counts.cpu.clear()
    _counts.batches = 0


@pytest.fixture
def counting() -> Iterator[None]:
    _counts.on = True
    try:
        yield
    finally:
        _reset_counts()


@pytest.mark.usefixtures("counting")
async def test_a_step_is_filed_under_the_batches_only_in_the_writers_task_during_one() -> None:
    step = _step("step", lambda: None)
    helper = HelperThread("test-helper")
    loop = asyncio.get_running_loop()
    scheduled = loop.create_future()

    async def other_task() -> None:
        step()  # runs while the batch below waits: another task

    def callback() -> None:
        step()
        scheduled.set_result(None)

    async def process() -> None:
        step()
        async with asyncio.TaskGroup() as tasks:  # a task started in the batch: not the batch
            tasks.create_task(other_task(), name="test-other")
            await asyncio.sleep(0)
        await helper.submit(step)  # the store's helper thread
        loop.call_soon(callback)  # a callback the batch scheduled
        await scheduled
        step()

    try:
        step()
        await _batch(process)()
        step()
    finally:
        helper.close()
    assert _counts.calls == {"step": 2, "step (elsewhere)": 5}
    assert _counts.batches == 1


@pytest.mark.usefixtures("counting")
async def test_a_step_inside_another_is_that_ones_time_unless_it_is_its_part() -> None:
    part = _step("part", lambda: None, part_of="outer")
    inner = _step("inner", lambda: None)
    outer = _step("outer", lambda: (part(), inner()))

    async def process() -> None:
        outer()

    await _batch(process)()
    assert _counts.calls == {"outer": 1, "part": 1, "inner (elsewhere)": 1}


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
        _reset_counts()


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


def test_the_report_files_each_count_where_it_was_made(tmp_path: Path) -> None:
    commit = "durable COMMIT (WAL frames, fsync)"
    calls = {
        DECIDE: 10,
        commit: 4,
        commit + " (elsewhere)": 2,
        "BEGIN IMMEDIATE (elsewhere)": 3,  # copied before its CPU was added: none in ``cpu``
        "task:Pipeline.run": 5,
        "select": 9,
        "loop turns": 9,
    }
    cpu = {DECIDE: 1_000, commit: 4_000, commit + " (elsewhere)": 300, "loop turns": 9_000}
    _write_report(tmp_path / "report.json", calls, cpu, 1_500.0)
    report = StageReport.model_validate_json((tmp_path / "report.json").read_text())
    assert report.stages[DECIDE] == StageFigure(calls=10, cpu_ns=1_000)
    assert report.stages[commit] == StageFigure(calls=4, cpu_ns=4_000)
    assert report.stages["BEGIN IMMEDIATE"] == StageFigure(calls=0, cpu_ns=0)
    assert report.elsewhere == {
        commit: StageFigure(calls=2, cpu_ns=300),
        "BEGIN IMMEDIATE": StageFigure(calls=3, cpu_ns=0),
    }
    assert set(report.handles) == {"task:Pipeline.run", "select"}
    assert (report.loop_turns, report.loop_cpu_ns, report.overhead_ns) == (9, 9_000, 1_500.0)
    assert not (tmp_path / "report.json.partial").exists()


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
