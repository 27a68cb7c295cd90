"""The stage benchmark (gateway/bench/stages.py) on one short run of the real gateway between
real brokers: the timed gateway forwards everything, each stage is counted exactly where the
message path passes it, the loop's figures fit inside the process's, and the table names every
stage."""

from __future__ import annotations

import pytest

from gateway.bench.stage_probe import DECIDE, STAGES, WRITER_TASK, StageFigure, StageReport
from gateway.bench.stages import StageRun, main, render_stages, run

# The steps that run once per message (the rest once per batch).
PER_MESSAGE = {
    DECIDE,
    "the queue share asked",
    "the explanation drafted",
    "PUBACKs to devices queued",
}


@pytest.fixture(scope="module")
def short_run() -> StageRun:
    return run(400.0, 2.0)


COMMIT = "durable COMMIT (WAL frames, fsync)"


def test_every_message_passes_each_per_message_stage_once(short_run: StageRun) -> None:
    assert short_run.lost == 0
    assert short_run.messages == short_run.sent >= 700  # 400 msg/s for 2 s, give or take a tick
    stages = short_run.report.stages
    # Counted between the two signals, and every message was decided and acknowledged in that
    # window (the probe on broker B saw each one before SIGUSR2, and a row leaves after its ack).
    assert stages[DECIDE].calls == short_run.messages
    assert stages["PUBACKs to devices queued"].calls == short_run.messages
    # The benchmark's customer has one recipient per message: one share asked, one entry each.
    assert stages["the queue share asked"].calls == short_run.messages
    assert stages["the explanation drafted"].calls == short_run.messages
    # One transaction per batch; a batch holds at least one message.
    batches = short_run.report.batches
    assert 0 < batches <= short_run.messages
    for per_batch in (
        "BEGIN IMMEDIATE",
        "log entries appended",
        "outbox rows inserted",
        "rows handed to the forwarders",
    ):
        assert stages[per_batch].calls == batches, per_batch
    # The last batch's writes go out as the recipient's broker gets the last message: SIGUSR2
    # may stop the counting before that step's count is added.
    assert batches - 1 <= stages["held writes sent"].calls <= batches
    # Each batch's COMMIT ran on the loop (in the batch) or on the store's helper thread (filed
    # elsewhere, with the checkpoints' COMMITs); a slow disk sends them all to the thread.
    elsewhere = short_run.report.elsewhere.get(COMMIT, StageFigure(calls=0, cpu_ns=0))
    assert stages[COMMIT].calls <= batches <= stages[COMMIT].calls + elsewhere.calls
    assert stages[COMMIT].cpu_ns + elsewhere.cpu_ns > 0
    for stage in STAGES:
        if stage.label != COMMIT:
            assert stages[stage.label].cpu_ns > 0, stage.label


def test_the_loop_figures_fit_inside_the_process(short_run: StageRun) -> None:
    report = short_run.report
    writer = report.handles[WRITER_TASK]
    assert writer.calls >= report.batches
    assert sum(f.cpu_ns for f in report.handles.values()) <= report.loop_cpu_ns
    assert report.loop_cpu_ns <= report.process_cpu_ns
    # The steps were counted only inside the batches, which run inside the writer's task.
    steps = sum(report.stages[s.label].cpu_ns for s in STAGES if s.part_of is None)
    assert steps <= writer.cpu_ns
    parts = sum(report.stages[s.label].cpu_ns for s in STAGES if s.part_of == DECIDE)
    assert parts <= report.stages[DECIDE].cpu_ns
    assert report.overhead_ns > 0


def test_the_table_names_every_stage(short_run: StageRun) -> None:
    lines = list(render_stages(short_run))
    assert lines[0].startswith(
        f"Einblick at 400 msg/s for 2 s (wake interval its default): {short_run.messages:,} "
        "messages arrived (0 lost) in "
    )
    text = "\n".join(lines)
    for stage in STAGES:
        assert stage.label in text, stage.label
    assert "the rest of the writer's task" in text
    assert "The probe's own cost is in these figures: at least" in text


def _figure(calls: int, us: float) -> StageFigure:
    """``calls`` calls taking ``us`` µs in all."""
    return StageFigure(calls=calls, cpu_ns=round(us * 1000))


def test_the_rest_of_the_batches_is_what_their_steps_leave() -> None:
    """A report made up here: 100 messages in 40 batches, every step 1 µs per call except the
    COMMIT (100 µs); the writer's task took 8,000 µs; a checkpoint COMMITted elsewhere."""
    calls = {s.label: 100 if s.label in PER_MESSAGE else 40 for s in STAGES}
    stages = {label: _figure(n, float(n)) for label, n in calls.items()}
    stages[COMMIT] = _figure(40, 4_000.0)
    report = StageReport(
        process_cpu_ns=10_000_000,
        loop_cpu_ns=9_500_000,
        loop_turns=90,
        handles={WRITER_TASK: _figure(45, 8_000.0), "select": _figure(90, 900.0)},
        stages=stages,
        elsewhere={COMMIT: _figure(1, 120.0)},
        batches=40,
        overhead_ns=1_000.0,
    )
    stage_run = StageRun("einblick-wake10", 1000.0, 0.1, 100, 100, 0, report)
    lines = list(render_stages(stage_run))
    assert lines[0] == (
        "Einblick at 1,000 msg/s for 0 s (wake interval 10 ms): 100 messages arrived (0 lost) in "
        "40 batches (2.50 messages each); process CPU 100.0 µs per message"
    )
    # The steps: the decision 100 µs, the PUBACKs 100, five per-batch steps 40 each, the COMMIT
    # 4,000: 4,400 of the writer's 8,000 µs. The decision's two parts are inside its 100 µs and
    # are not subtracted again.
    rest = next(line for line in lines if "the rest of the writer's task" in line)
    assert rest.split()[-4:] == ["40", "90.0", "36.0", "36%"]
    assert any(line.startswith("The same steps outside the writer's batches") for line in lines)
    assert lines[-1].split()[-4:] == ["1", "120.0", "1.2", "1%"]


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
