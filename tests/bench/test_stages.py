"""The stage benchmark (gateway/bench/stages.py) on one short run of the real gateway between
real brokers: the timed gateway forwards everything, each stage is counted exactly where the
message path passes it, the loop's figures fit inside the process's, and the table names every
stage."""

from __future__ import annotations

import pytest

from gateway.bench.stage_probe import STAGES
from gateway.bench.stages import StageRun, main, render_stages, run


@pytest.fixture(scope="module")
def short_run() -> StageRun:
    return run(400.0, 2.0)


def test_every_message_passes_each_per_message_stage_once(short_run: StageRun) -> None:
    assert short_run.lost == 0
    assert short_run.messages == short_run.sent >= 700  # 400 msg/s for 2 s, give or take a tick
    stages = short_run.report.stages
    # Counted between the two signals, and every message was decided and acknowledged in that
    # window (the probe on broker B saw each one before SIGUSR2, and a row leaves after its ack).
    assert stages["decide and explain (per message)"].calls == short_run.messages
    assert stages["PUBACKs to devices queued"].calls == short_run.messages
    assert stages["  of it: the queue share asked"].calls == short_run.messages
    # One log append, one outbox insert and one hand-over per batch; a batch holds at least one.
    batches = short_run.report.batches
    assert 0 < batches <= short_run.messages
    for per_batch in (
        "log entries appended",
        "outbox rows inserted",
        "rows handed to the forwarders",
    ):
        assert stages[per_batch].calls == batches, per_batch
    # Every durable transaction's: one per batch, and a signed checkpoint's now and then.
    assert batches <= stages["durable COMMITs (WAL frames, fsync)"].calls < 2 * batches
    for label, *_ in STAGES:
        assert stages[label].cpu_ns > 0, label


def test_the_loop_figures_fit_inside_the_process(short_run: StageRun) -> None:
    report = short_run.report
    writer = report.handles["task:Pipeline.run"]
    assert writer.calls >= report.batches
    assert sum(f.cpu_ns for f in report.handles.values()) <= report.loop_cpu_ns
    assert report.loop_cpu_ns <= report.process_cpu_ns
    top_level = sum(f.cpu_ns for s, f in report.stages.items() if not s.startswith(" "))
    assert top_level <= writer.cpu_ns
    assert report.overhead_ns > 0


def test_the_table_names_every_stage(short_run: StageRun) -> None:
    lines = list(render_stages(short_run))
    assert lines[0].startswith(
        f"Einblick at 400 msg/s for 2 s (wake interval its default): {short_run.messages:,} "
        "messages arrived (0 lost) in "
    )
    text = "\n".join(lines)
    for label, *_ in STAGES:
        assert f"      {label} " in text, label
    assert "the rest of the batches' code" in text
    assert "The probe's own cost is in these figures" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "0"], "--rate must be above 0"),
        (["--system", "forwarder"], "unknown system forwarder"),
        (["--system", "einblick-wake0"], "unknown system einblick-wake0"),
    ],
)
def test_main_refuses_what_it_cannot_measure_before_starting_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
