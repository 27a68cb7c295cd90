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
- inside the writer's batches, the pieces named in ``STAGES``, on whichever thread runs them (a
  COMMIT on the helper thread counts there).

The probe costs CPU of its own, two clock reads and a Python frame per timed call; it measures
that cost at its start (``overhead_ns``) so the report can say how much of each figure it is.
"""

from __future__ import annotations

import asyncio.base_events
import asyncio.events
import functools
import importlib
import runpy
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.messages.pacing import PacedSelector

__all__ = ["STAGES", "StageFigure", "StageReport", "main"]

# (label, module, class or "" for a module function, attribute). The labels are the stages'
# names in the report; indented ones are part of the one above.
STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("decide and explain (per message)", "gateway.messages.pipeline", "Pipeline", "_prepare"),
    ("  of it: the queue share asked", "gateway.messages.pipeline", "Pipeline", "_admit"),
    ("  of it: the explanation drafted", "gateway.messages.pipeline", "Pipeline", "_draft"),
    ("BEGIN IMMEDIATE (every transaction)", "gateway.messages.store", "", "_try_begin"),
    ("log entries appended", "gateway.log.writer", "LogWriter", "append"),
    ("outbox rows inserted", "gateway.messages.outbox", "", "insert"),
    ("durable COMMITs (WAL frames, fsync)", "gateway.messages.store", "", "_timed_commit"),
    ("PUBACKs to devices queued", "gateway.messages.mqtt", "MqttConnection", "ack"),
    ("rows handed to the forwarders", "gateway.messages.pipeline", "Pipeline", "_hand_over"),
    ("held writes sent", "gateway.messages.pump", "WritesHeld", "__exit__"),
)
# Counted, not timed (coroutine functions: their time is their awaits'): the writer's batches.
BATCHES = ("gateway.messages.pipeline", "Pipeline", "process")
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
    stages: dict[str, StageFigure]  # STAGES by label
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

    def figures(self, keys: list[str]) -> dict[str, StageFigure]:
        return {k: StageFigure(calls=self.calls.get(k, 0), cpu_ns=self.cpu.get(k, 0)) for k in keys}


_counts = _Counts()
_clock = time.thread_time_ns
_LOOP = "loop turns"
_SELECT = "select"


def _timed(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not _counts.on:
            return function(*args, **kwargs)
        started = _clock()
        try:
            return function(*args, **kwargs)
        finally:
            _counts.add(key, _clock() - started)

    return timed


def _counted(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        if _counts.on:
            _counts.batches += 1
        return function(*args, **kwargs)

    return counted


def _handle_name(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)  # asyncio's own attribute: what it will run
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coroutine = owner.get_coro()
        return "task:" + str(getattr(coroutine, "__qualname__", coroutine))
    return str(getattr(callback, "__qualname__", type(callback).__name__))


def _install() -> None:
    for label, module_name, owner_name, attribute in STAGES:
        module = importlib.import_module(module_name)
        owner: object = getattr(module, owner_name) if owner_name else module
        setattr(owner, attribute, _timed(label, getattr(owner, attribute)))
    module_name, owner_name, attribute = BATCHES
    owner = getattr(importlib.import_module(module_name), owner_name)
    setattr(owner, attribute, _counted(getattr(owner, attribute)))

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


def main() -> int:
    if len(sys.argv) < 2:
        print(
            "usage: python -m gateway.bench.stage_probe REPORT.json run --config CONFIG",
            file=sys.stderr,
        )
        return 2
    report_path = Path(sys.argv.pop(1))
    overhead = _calibrate()
    _install()

    def start(signum: int, frame: FrameType | None) -> None:
        _counts.calls.clear()
        _counts.cpu.clear()
        _counts.batches = 0
        _counts.started_ns = time.process_time_ns()
        _counts.on = True

    def stop(signum: int, frame: FrameType | None) -> None:
        _counts.on = False
        handles = [k for k in _counts.calls if k not in {label for label, *_ in STAGES}]
        report = StageReport(
            process_cpu_ns=time.process_time_ns() - _counts.started_ns,
            loop_cpu_ns=_counts.cpu.get(_LOOP, 0),
            loop_turns=_counts.calls.get(_LOOP, 0),
            handles=_counts.figures([k for k in handles if k != _LOOP]),
            stages=_counts.figures([label for label, *_ in STAGES]),
            batches=_counts.batches,
            overhead_ns=overhead,
        )
        partial = report_path.with_name(report_path.name + ".partial")
        partial.write_text(report.model_dump_json(indent=1), encoding="utf-8")
        partial.replace(report_path)  # whole or not at all: the bench waits for the name

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    # As ``python -m gateway`` would run, with the argument list left after REPORT.
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
