"""``einblick bench --repeat N`` (gateway/bench/repeats.py): the systems' order rotates each round,
a ratio to the forwarder is taken within its round before the median, a "max" row stays one only
if it was one in every round, and through the command line each round's table is printed before
the medians."""

from __future__ import annotations

import dataclasses
import re

import pytest

from gateway.bench import pipeline
from gateway.bench.attach import Attach
from gateway.bench.pipeline import main
from gateway.bench.repeats import Spread, render_repeats, rotated, summarize
from gateway.bench.results import Result, Run


def _row(system: str, cpu_us: float, p99_ms: float, offered: float = 1_000.0) -> Result:
    return Result(
        system=system,
        offered=offered,
        published=8_000,
        unique=8_000,
        lost=0 if offered else None,
        duplicates=0 if offered else None,
        seconds=8.0,
        p50_ms=p99_ms / 2,
        p99_ms=p99_ms,
        cpu_us=cpu_us,
        rss_mb=20.0,
        log_bytes=None,
        generator_rate=offered or 40_000.0,
        backlog_left=None if offered else 10_000,
    )


# Three rounds in rotated order. The forwarder's CPU moves with the machine; Einblick's ratios
# per round are 2.0, 1.5 and 1.2: their median 1.5 is not the ratio of the medians (200 / 150).
ROUNDS = [
    Run([_row("forwarder", 100, 1.0), _row("einblick", 200, 4.0)], None),
    Run([_row("einblick", 300, 5.0), _row("forwarder", 200, 2.0)], None),
    Run([_row("forwarder", 150, 1.0), _row("einblick", 180, 3.5)], None),
]


def test_each_round_rotates_the_order_of_the_systems() -> None:
    systems = ("forwarder", "einblick", "einblick-wake10")
    assert [rotated(systems, n) for n in range(4)] == [
        ("forwarder", "einblick", "einblick-wake10"),
        ("einblick", "einblick-wake10", "forwarder"),
        ("einblick-wake10", "forwarder", "einblick"),
        ("forwarder", "einblick", "einblick-wake10"),
    ]


def test_the_ratio_to_the_forwarder_is_taken_within_each_round_before_the_median() -> None:
    forwarder, einblick = summarize(ROUNDS, ("forwarder", "einblick"))
    assert (forwarder.system, einblick.system) == ("forwarder", "einblick")  # the given order
    assert einblick.cpu_us.values == (200, 300, 180) and einblick.cpu_us.median == 200
    assert einblick.cpu_ratio == Spread((2.0, 1.5, 1.2))
    assert einblick.cpu_ratio.median == 1.5  # not 200 / 150
    assert einblick.p99_added_ms == Spread((3.0, 3.0, 2.5))
    assert forwarder.cpu_ratio is None and forwarder.p99_added_ms is None
    assert einblick.label == "1,000/s"


def test_the_medians_are_printed_with_their_ranges() -> None:
    lines = list(render_repeats(ROUNDS, ("forwarder", "einblick")))
    assert "Median of 3 runs (lowest–highest)" in lines[1]
    (einblick,) = [line for line in lines if line.startswith("  einblick at 1,000/s: ")]
    assert "CPU 200 (180–300) µs/msg" in einblick
    assert "1.50 (1.20–2.00)x the forwarder's CPU" in einblick
    assert "p99 +3.0 (+2.5–+3.0) ms over it" in einblick
    (forwarder,) = [line for line in lines if line.startswith("  forwarder at 1,000/s: ")]
    assert "x the forwarder" not in forwarder
    assert Spread((4.0,)).text(str) == "4.0"  # one round: no range to show


def test_a_max_row_is_one_only_if_it_was_one_in_every_round() -> None:
    def maxed(generator_rate: float) -> Run:
        rows = [_row("forwarder", 80, 9.0, offered=0.0), _row("einblick", 90, 9.0, offered=0.0)]
        return Run([dataclasses.replace(r, generator_rate=generator_rate) for r in rows], None)

    systems = ("forwarder", "einblick")
    assert {s.label for s in summarize([maxed(40_000), maxed(40_000)], systems)} == {"max"}
    # The rows' throughput is 1,000 msg/s: 2,999 offered is short of three times it.
    for rounds in ([maxed(40_000), maxed(2_999)], [maxed(2_999), maxed(40_000)]):
        assert {s.label for s in summarize(rounds, systems)} == {"gen-bound"}


def test_rounds_that_measured_different_systems_are_refused() -> None:
    with pytest.raises(ValueError, match="same systems at the same rates"):
        summarize([ROUNDS[0], Run([_row("forwarder", 100, 1.0)], None)], ("forwarder", "einblick"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeat", "0"], "--repeat 0: give 1 or more rounds"),
        (["--repeat", "2", "--on-this-box"], "--on-this-box and --slowdown take one run"),
        (["--repeat", "2", "--soak", "60"], "--soak, --on-this-box and --slowdown take one run"),
        (["--repeat", "2", "--slowdown", "3"], "--on-this-box and --slowdown take one run"),
        (["--rates", "50,50"], "--rates 50,50: each rate once"),
        (["--systems", "forwarder,forwarder"], "name each system once"),
        (["--systems", ","], "name each system once"),
    ],
)
def test_a_repeat_that_cannot_be_summarised_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit):  # the later --rates and --systems win
        main(["--rates", "50", "--systems", "forwarder", *argv])
    assert message in capsys.readouterr().err


def test_each_round_is_printed_then_the_medians(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--repeat", "2", "--rates", "50", "--duration", "1", "--systems", "forwarder,bridge"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    first = out.index("Round 1 of 2 (forwarder, bridge), load average ")
    second = out.index("Round 2 of 2 (bridge, forwarder), load average ")
    medians = out.index("Median of 2 runs")
    assert first < second < medians
    for system in ("forwarder", "bridge"):
        # a row in each round's table, measured: nothing lost or duplicated
        rows = re.findall(rf"^{system}\s+50\s+\S+\s+0\s+0\s", out, re.MULTILINE)
        assert len(rows) == 2, out
        assert re.search(rf"^  {system} at 50/s: \S+ \(\S+\) msg/s, CPU ", out, re.MULTILINE), out


def test_each_round_runs_its_rotated_order_and_prints_no_single_run_figures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[tuple[tuple[str, ...], int | None]] = []

    def run_bench(
        rates: list[float],
        duration: float,
        systems: tuple[str, ...],
        *,
        attach: Attach | None = None,
        commits: bool = True,
    ) -> Run:
        assert not commits  # the disk's timing is a single run's
        asked.append((systems, attach.round_number if attach is not None else None))
        return ROUNDS[len(asked) - 1]

    monkeypatch.setattr(pipeline, "run_bench", run_bench)
    argv = ["--repeat", "3", "--rates", "1000", "--systems", "forwarder,einblick"]
    assert main([*argv, "--attach", "perf record -p {pid} -o {round}.data"]) == 0
    assert asked == [
        (("forwarder", "einblick"), 1),
        (("einblick", "forwarder"), 2),
        (("forwarder", "einblick"), 3),
    ]
    out = capsys.readouterr().out
    assert "  einblick at 1,000/s: " in out and "1.50 (1.20–2.00)x the forwarder's CPU" in out
    assert "Sizing" not in out  # a single run's (ROUNDS has Einblick rows): not among medians
