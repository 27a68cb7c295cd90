"""Where the gateway's CPU goes, stage by stage, under ``einblick bench``'s load:
``python -m gateway.bench.stages [--rate 1000] [--duration 12] [--system einblick-wake5]``.

``einblick bench`` gives the CPU per message of the whole process; ``gateway.bench.permessage``
times the Python steps alone, each in a tight loop (warm caches: lower than they cost among
sockets and the disk). This runs the real gateway between two loopback brokers, as ``einblick
bench`` does, with its stages timed in thread CPU time by ``gateway.bench.stage_probe``, and
prints each stage's calls, CPU per call, CPU per message and share of the process: what a batch
costs at the rate asked, and which of it is per message and which per wake-up.

The probe's own CPU (two clock reads and a Python frame per timed call, measured as it starts)
is in the figures; the table states a lower bound of it per message. It slows the gateway more
than that: read the rows as shares and costs per call, and ``einblick bench`` for the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.numbers import format_decimal, format_percent

from gateway.bench.pipeline import platform
from gateway.bench.results import (
    GENERATOR_PROCESSES,
    MAX_WAKE_MS,
    UNPACED,
    WAKE_PREFIX,
    wake_interval_ms,
)
from gateway.bench.stage_probe import STAGES, WRITER_TASK, StageFigure, StageReport
from gateway.bench.systems import DEVICES, System
from simulators.load import LatencyProbe

__all__ = ["StageRun", "main", "render_stages", "run"]

REPORT_TIMEOUT_S = 30.0
ARRIVAL_TIMEOUT_S = 180.0
# The loop's callbacks worth naming on their own line, by the name the probe gives them.
NAMED_HANDLES: dict[str, str] = {
    WRITER_TASK: "the writer's batches (Pipeline.run)",
    "SocketPump.read": "MQTT reads (SocketPump.read)",
    "SocketPump._read_buffered": "MQTT reads left in a buffer",
    "select": "the selector's waits, with pacing's pauses",
    "task:AckedRows.run": "deleting acknowledged rows",
    "task:Checkpoints.run": "signed checkpoints",
}


@dataclass(frozen=True, slots=True)
class StageRun:
    system: str  # einblick, or einblick-unpaced / einblick-wakeN (gateway/bench/results.py)
    rate: float
    seconds: float
    sent: int  # by the load devices
    messages: int  # arrived at the recipient's broker (each once)
    lost: int
    report: StageReport


def run(rate: float, duration: float, system: str = "einblick") -> StageRun:
    """One run of ``duration`` s at ``rate`` msg/s through a fresh gateway and brokers."""
    with tempfile.TemporaryDirectory(prefix="einblick-stages-") as tmp:
        return asyncio.run(_run(Path(tmp), rate, duration, system))


async def _run(root: Path, rate: float, duration: float, name: str) -> StageRun:
    report_path = root / "stages.json"
    system = System(name, root / "system")
    # The gateway started through the probe (gateway/bench/stage_probe.py), reporting there.
    system.entry = ("gateway.bench.stage_probe", (str(report_path),))
    await system.start()
    try:
        return await asyncio.to_thread(_measure, system, rate, duration, report_path)
    finally:
        await system.stop()


def _measure(system: System, rate: float, duration: float, report_path: Path) -> StageRun:
    with LatencyProbe(host="127.0.0.1", port=system.b_port, topic_filter="#", qos=1) as probe:
        generator = system.load(rate, duration, GENERATOR_PROCESSES)
        generator.start()
        os.kill(system.pid, signal.SIGUSR1)
        generator.go()
        offered = generator.wait()
        if not probe.wait_for(offered.published, ARRIVAL_TIMEOUT_S):
            raise TimeoutError(
                f"of {offered.published:,} messages sent, not all reached the recipient's broker "
                f"within {ARRIVAL_TIMEOUT_S:.0f} s; see {system.root}/gateway.log"
            )
        os.kill(system.pid, signal.SIGUSR2)
        result = probe.report(offered.sent)
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while not report_path.exists():
        if system.process is not None and system.process.returncode is not None:
            raise RuntimeError(
                f"the timed gateway exited with code {system.process.returncode} before writing "
                f"its report; see {system.root}/gateway.log"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the timed gateway wrote no report to {report_path} within "
                f"{REPORT_TIMEOUT_S:.0f} s of being asked (SIGUSR2); see {system.root}/gateway.log"
            )
        time.sleep(0.05)
    report = StageReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    return StageRun(
        system.name, rate, duration, offered.published, result.unique, result.lost, report
    )


def _n(value: float, digits: int = 0) -> str:
    pattern = "#,##0" if digits == 0 else "#,##0." + "0" * digits
    return format_decimal(value, format=pattern, locale="en")


def _row(label: str, figure: StageFigure, messages: int, process_ns: int) -> str:
    per_call = figure.cpu_ns / figure.calls / 1000 if figure.calls else 0.0
    per_message = figure.cpu_ns / max(messages, 1) / 1000
    share = figure.cpu_ns / process_ns if process_ns else 0.0
    calls = _n(figure.calls) if figure.calls else ""
    per_call_text = _n(per_call, 1) if figure.calls else ""
    return (
        f"  {label:<50} {calls:>9} {per_call_text:>9} {_n(per_message, 1):>9}"
        f" {format_percent(share, locale='en'):>6}"
    )


def _sum(figures: Iterable[StageFigure]) -> StageFigure:
    listed = list(figures)
    return StageFigure(calls=sum(f.calls for f in listed), cpu_ns=sum(f.cpu_ns for f in listed))


def render_stages(run: StageRun) -> Iterator[str]:
    report = run.report
    messages = max(run.messages, 1)
    process = report.process_cpu_ns
    wake = wake_interval_ms(run.system)
    interval = "its default" if wake is None else ("0, unpaced" if wake == 0 else f"{wake} ms")
    yield (
        f"Einblick at {_n(run.rate)} msg/s for {_n(run.seconds)} s (wake interval {interval}): "
        f"{_n(run.messages)} messages arrived ({_n(run.lost)} lost) in {_n(report.batches)} "
        f"batches ({_n(run.messages / max(report.batches, 1), 2)} messages each); process CPU "
        f"{_n(process / messages / 1000, 1)} µs per message"
    )
    timed_calls = report.loop_turns + sum(
        f.calls
        for figures in (report.handles, report.stages, report.elsewhere)
        for f in figures.values()
    )
    yield (
        f"The probe's own cost is in these figures: at least {_n(report.overhead_ns / 1000, 2)} "
        f"µs per timed call, {_n(timed_calls * report.overhead_ns / messages / 1000, 1)} µs per "
        "message."
    )
    yield f"  {'thread CPU (user + system)':<50} {'calls':>9} {'µs/call':>9} {'µs/msg':>9} {'share':>6}"
    loop = StageFigure(calls=report.loop_turns, cpu_ns=report.loop_cpu_ns)
    yield _row("the event loop's turns (main thread)", loop, messages, process)
    named = [(k, f) for k, f in report.handles.items() if k in NAMED_HANDLES]
    named.sort(key=lambda item: -item[1].cpu_ns)
    for key, figure in named:
        yield _row("  " + NAMED_HANDLES[key], figure, messages, process)
        if key == WRITER_TASK:
            yield from _batch_rows(report, figure, messages)
    others = [f for k, f in report.handles.items() if k not in NAMED_HANDLES]
    yield _row("  other callbacks", _sum(others), messages, process)
    rest = StageFigure(calls=0, cpu_ns=process - report.loop_cpu_ns)
    yield _row("outside the loop's turns (other threads; between turns)", rest, messages, process)
    if report.elsewhere:
        yield "The same steps outside the writer's batches (in the rows above by where they ran):"
        for stage in STAGES:
            if stage.label in report.elsewhere:
                yield _row("  " + stage.label, report.elsewhere[stage.label], messages, process)


def _batch_rows(report: StageReport, writer: StageFigure, messages: int) -> Iterator[str]:
    process = report.process_cpu_ns
    for stage in STAGES:
        indent = "      " if stage.part_of else "    "
        label = f"of it: {stage.label}" if stage.part_of else stage.label
        yield _row(indent + label, report.stages[stage.label], messages, process)
    # What the steps leave of the writer's task: the Python between them (the transaction's and
    # the batch's own code), taking the next batch, the task's switches, and the probe's frames.
    # Exact: the steps in ``stages`` ran in the writer's task during its batches, none inside
    # another (gateway/bench/stage_probe.py).
    steps = _sum(report.stages[s.label] for s in STAGES if s.part_of is None)
    rest = StageFigure(calls=report.batches, cpu_ns=writer.cpu_ns - steps.cpu_ns)
    yield _row("    the rest of the writer's task", rest, messages, process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.bench.stages", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="offered msg/s")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of load")
    parser.add_argument(
        "--system",
        default="einblick",
        help=f"einblick (its default wake interval), {UNPACED} or {WAKE_PREFIX}N (N ms, 1-"
        f"{MAX_WAKE_MS}), as in einblick bench",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0: the stages are measured at a steady rate")
    if args.system != "einblick" and wake_interval_ms(args.system) is None:
        parser.error(
            f"unknown system {args.system}: choose einblick, {UNPACED} or {WAKE_PREFIX}N "
            f"(N ms, 1-{MAX_WAKE_MS})"
        )
    print(
        f"machine: {os.cpu_count()} cores, {platform()}; {DEVICES} devices, ~200-byte JSON, QoS 1"
    )
    for line in render_stages(run(args.rate, args.duration, args.system)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
