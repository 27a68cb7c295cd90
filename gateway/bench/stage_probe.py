"""The gateway with its stages timed: ``python -m gateway.bench.stage_probe REPORT run --config …``.

Only for ``gateway.bench.stages``, which starts it in place of ``python -m gateway`` and drives it
with two signals: SIGUSR1 starts counting, SIGUSR2 stops and writes the report (``StageReport``,
JSON) to REPORT. Nothing the gateway does changes; around each timed call the probe reads the
calling thread's CPU clock (``time.thread_time_ns``: user and system time, so a COMMIT's fsync
and a ``send``'s trip through the kernel count where they happen).

What it times:

- every callback the event loop runs on the main thread, by name (a task by its coroutine:
  ``task:Pipeline.run`` is the writer's batches), the selector's waits (with the pacing's
  pauses: ``gateway/messages/pacing.py``) and the loop's turns in all;
- the pieces named in ``STAGES``: inside the writer's batches (``Pipeline.process`` in its
  task, on the loop) in ``stages``; the same functions called from anywhere else (another
  task's transaction, a COMMIT the store hands to its helper thread, a consent change's log
  entry, a callback a batch scheduled) or inside another step they are not a part of, in
  ``elsewhere``. So the steps in ``stages`` are disjoint parts of the writer task's time.

The probe costs CPU of its own, two clock reads and a Python frame per timed call; it measures
that cost at its start (``overhead_ns``), without the naming of each loop callback, so what the
report says it is is a lower bound.
"""

from __future__ import annotations

import asyncio.base_events
import asyncio.events
import contextlib
import functools
import importlib
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from gateway.messages.pacing import PacedSelector

__all__ = [
    "BATCHES",
    "DECIDE",
    "STAGES",
    "WRITER_TASK",
    "Stage",
    "StageFigure",
    "StageReport",
    "main",
]


class Stage(NamedTuple):
    """A function the probe times, and where it sits in the report."""

    label: str
    module: str
    owner: str  # its class, or "" for a module function
    attribute: str
    part_of: str | None = None  # the label of the stage it runs inside


_PIPELINE = "gateway.messages.pipeline"
DECIDE = "decide and explain (per message)"
STAGES: tuple[Stage, ...] = (
    Stage(DECIDE, _PIPELINE, "Pipeline", "_prepare"),
    Stage("the queue share asked", _PIPELINE, "Pipeline", "_admit", DECIDE),
    Stage("the explanation drafted", _PIPELINE, "Pipeline", "_draft", DECIDE),
    Stage("BEGIN IMMEDIATE", "gateway.messages.store", "", "_try_begin"),
    Stage("log entries appended", "gateway.log.writer", "LogWriter", "append"),
    Stage("outbox rows inserted", "gateway.messages.outbox", "", "insert"),
    Stage("durable COMMIT (WAL frames, fsync)", "gateway.messages.store", "", "_timed_commit"),
    Stage("PUBACKs to devices queued", "gateway.messages.mqtt", "MqttConnection", "ack"),
    Stage("rows handed to the forwarders", _PIPELINE, "Pipeline", "_hand_over"),
    Stage("held writes sent", "gateway.messages.pump", "WritesHeld", "__exit__"),
)
# The writer's batches: each call of this coroutine function is counted, and what the stages
# do while it runs (in its task, on the loop) is filed as the batches'. The same functions
# called elsewhere (a transaction of another task, a COMMIT on the helper thread, a consent
# change's log entry) are filed apart, so the batches' rows and their rest stay exact.
BATCHES = Stage("the writer's batches", _PIPELINE, "Pipeline", "process")
WRITER_TASK = "task:Pipeline.run"
CALIBRATION_CALLS = 20_000


class StageFigure(BaseModel):
    model_config = ConfigDict(frozen=True)

    calls: int
    cpu_ns: int


class StageReport(BaseModel):
    """What the probe counted between SIGUSR1 and SIGUSR2."""

    model_config = ConfigDict(frozen=True)

    process_cpu_ns: int  # the whole process, every thread
    loop_cpu_ns: int  # the main thread inside the event loop's turns
    loop_turns: int
    handles: dict[str, StageFigure]  # the loop's callbacks by name, and "select"
    stages: dict[str, StageFigure]  # STAGES by label, inside the writer's batches
    elsewhere: dict[str, StageFigure]  # STAGES by label, called from anywhere else
    batches: int
    overhead_ns: float  # the probe's own CPU per timed call


class _Counts:
    """Owned by the probe; the timed wrappers add to it while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.started_ns = 0
        self.calls: dict[str, int] = {}
        self.cpu: dict[str, int] = {}
        self.batches = 0
        self._lock = threading.Lock()  # a COMMIT on the helper thread adds from there

    def add(self, key: str, ns: int) -> None:
        with self._lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            self.cpu[key] = self.cpu.get(key, 0) + ns


_counts = _Counts()
_clock = time.thread_time_ns
_LOOP = "loop turns"
_SELECT = "select"


# The writer's task while it runs a batch. Callbacks the batch schedules (``call_soon`` copies
# the context) and tasks it starts see the value too, but are not that task; the store's helper
# thread (a plain thread) does not see it at all.
_in_batch: ContextVar[asyncio.Task[Any] | None] = ContextVar("in_batch", default=None)
_ELSEWHERE = " (elsewhere)"
# How many steps run on this thread: a step inside another is that one's time, not the batch's
# again (the parts, ``Stage.part_of``, are listed under theirs and not subtracted).
_depth = threading.local()


def _inside_batch() -> bool:
    task = _in_batch.get()
    if task is None:
        return False
    try:
        return asyncio.current_task() is task
    except RuntimeError:  # no running loop on this thread
        return False


def _timed(
    key: str, function: Callable[..., Any], *, stage: Stage | None = None
) -> Callable[..., Any]:
    """``function`` timed under ``key``; a ``stage`` is filed apart when it runs outside a
    batch, or inside another stage it is not a part of."""

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not _counts.on:
            return function(*args, **kwargs)
        depth = getattr(_depth, "steps", 0)
        if stage is not None:
            _depth.steps = depth + 1
        started = _clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent = _clock() - started
            where = key
            if stage is not None:
                _depth.steps = depth
                nested = depth > 0 and stage.part_of is None
                if nested or not _inside_batch():
                    where = key + _ELSEWHERE
            _counts.add(where, spent)

    return timed


def _batch(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(function)
    async def batch(*args: Any, **kwargs: Any) -> Any:
        if _counts.on:
            _counts.batches += 1
        token = _in_batch.set(asyncio.current_task())
        try:
            return await function(*args, **kwargs)
        finally:
            _in_batch.reset(token)

    return batch


def _handle_name(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)  # asyncio's own attribute: what it will run
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coroutine = owner.get_coro()
        return "task:" + str(getattr(coroutine, "__qualname__", coroutine))
    return str(getattr(callback, "__qualname__", type(callback).__name__))


def _owner(stage: Stage) -> object:
    module = importlib.import_module(stage.module)
    return getattr(module, stage.owner) if stage.owner else module


def _install() -> None:
    for stage in STAGES:
        owner = _owner(stage)
        setattr(
            owner,
            stage.attribute,
            _timed(stage.label, getattr(owner, stage.attribute), stage=stage),
        )
    owner = _owner(BATCHES)
    setattr(owner, BATCHES.attribute, _batch(getattr(owner, BATCHES.attribute)))

    main_thread = threading.main_thread()
    run_handle = asyncio.events.Handle._run

    def handle_run(self: asyncio.events.Handle) -> None:
        if not _counts.on or threading.current_thread() is not main_thread:
            run_handle(self)
            return
        started = _clock()
        try:
            run_handle(self)
        finally:
            _counts.add(_handle_name(self), _clock() - started)

    asyncio.events.Handle._run = handle_run  # type: ignore[method-assign]
    loop_class = asyncio.base_events.BaseEventLoop
    loop_class._run_once = _timed(_LOOP, loop_class._run_once)  # type: ignore[attr-defined]
    PacedSelector.select = _timed(_SELECT, PacedSelector.select)  # type: ignore[method-assign]


def _calibrate() -> float:
    """The probe's own CPU per timed call: a timed no-op against a bare one."""

    def nothing() -> None:
        return None

    timed = _timed("calibration", nothing)
    _counts.on = True
    try:
        started = _clock()
        for _ in range(CALIBRATION_CALLS):
            nothing()
        bare = _clock() - started
        started = _clock()
        for _ in range(CALIBRATION_CALLS):
            timed()
        wrapped = _clock() - started
    finally:
        _counts.on = False
        _counts.calls.clear()
        _counts.cpu.clear()
    return max(0.0, (wrapped - bare) / CALIBRATION_CALLS)


def _write_report(path: Path, calls: dict[str, int], cpu: dict[str, int], overhead: float) -> None:
    # The two dicts were copied one after the other while the helper thread may add: a key can
    # be in one copy only.
    def figure(key: str) -> StageFigure:
        return StageFigure(calls=calls.get(key, 0), cpu_ns=cpu.get(key, 0))

    labels = [stage.label for stage in STAGES]
    timed = {*labels, *(label + _ELSEWHERE for label in labels), _LOOP}
    report = StageReport(
        process_cpu_ns=time.process_time_ns() - _counts.started_ns,
        loop_cpu_ns=cpu.get(_LOOP, 0),
        loop_turns=calls.get(_LOOP, 0),
        handles={key: figure(key) for key in calls if key not in timed},
        stages={label: figure(label) for label in labels},
        elsewhere={
            label: figure(label + _ELSEWHERE) for label in labels if label + _ELSEWHERE in calls
        },
        batches=_counts.batches,
        overhead_ns=overhead,
    )
    partial = path.with_name(path.name + ".partial")
    partial.write_text(report.model_dump_json(indent=1), encoding="utf-8")
    partial.replace(path)  # whole or not at all: the benchmark waits for the name


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(
            "usage: python -m gateway.bench.stage_probe REPORT.json run --config CONFIG",
            file=sys.stderr,
        )
        return 2
    report_path = Path(sys.argv.pop(1))
    overhead = _calibrate()
    _install()

    def start(signum: int, frame: FrameType | None) -> None:
        # Counting is off until ``on`` is set below: nothing adds while these clear.
        _counts.calls.clear()
        _counts.cpu.clear()
        _counts.batches = 0
        _counts.started_ns = time.process_time_ns()
        _counts.on = True

    def stop(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs inside whatever the main thread was doing: it must not raise
        # into it, nor take the counts' lock (it may have interrupted ``add`` holding it). One
        # C-level copy of each dict is atomic under the GIL while the helper thread adds.
        _counts.on = False
        try:
            _write_report(report_path, _counts.calls.copy(), _counts.cpu.copy(), overhead)
        except Exception as exc:
            # Not print(): the handler may have interrupted the gateway's own write to stderr,
            # and a buffered stream refuses to be entered again.
            with contextlib.suppress(OSError):
                os.write(2, f"stage probe: could not write {report_path}: {exc}\n".encode())

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    # As ``python -m gateway`` would run, with the argument list left after REPORT. Its
    # ``sys.exit`` ends the process with the gateway's own exit code; 0 is never returned.
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
