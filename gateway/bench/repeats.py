"""``einblick bench --repeat N``: the systems measured N times in turn, and each figure's median over
the runs with its range, so that "the median of five runs" is one command's output.

Round ``i`` runs the systems in their order rotated by ``i`` (forwarder, einblick; then einblick,
forwarder), so that a machine growing busier or quieter over the rounds does not favour one
system. A ratio to the plain paho forwarder is taken within its round, from the same minutes of
the same machine, and the median is of those ratios, not a ratio of two medians. A "max" row is
called one only if it was one in every round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from gateway.bench.results import Run, max_rows_valid, rate_label, relative

__all__ = ["Spread", "Summary", "render_repeats", "rotated", "summarize"]


def rotated(systems: Sequence[str], round_index: int) -> tuple[str, ...]:
    """The order of the systems in round ``round_index`` (from 0)."""
    turn = round_index % len(systems)
    return (*systems[turn:], *systems[:turn])


@dataclass(frozen=True, slots=True)
class Spread:
    values: tuple[float, ...]  # one per round, in the rounds' order

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, show: Callable[[float], str]) -> str:
        """``median (lowest–highest)``, each written by ``show``."""
        if len(self.values) == 1:
            return show(self.median)
        return f"{show(self.median)} ({show(min(self.values))}–{show(max(self.values))})"


@dataclass(frozen=True, slots=True)
class Summary:
    """One system at one offered rate over every round."""

    system: str
    offered: float
    label: str  # "1,000/s", "max", or "gen-bound" if a round's max rows measured the generator
    throughput: Spread
    cpu_us: Spread
    p50_ms: Spread
    p99_ms: Spread
    # Against the forwarder of the same round (None: no forwarder in the run, or this is it).
    cpu_ratio: Spread | None
    p99_added_ms: Spread | None


def summarize(runs: Sequence[Run], systems: Sequence[str]) -> list[Summary]:
    """Each system's rows over the runs, in the order ``systems`` names them, each rate in the
    order measured. Every run must hold the same systems and rates."""
    valid = all(max_rows_valid(run)[0] for run in runs)
    by_run = [{(r.system, r.offered): r for r in run.results} for run in runs]
    keys = sorted(by_run[0], key=lambda key: systems.index(key[0]))
    if any(set(by_key) != set(by_run[0]) for by_key in by_run):
        raise ValueError("every round must measure the same systems at the same rates")
    summaries = []
    for system, offered in keys:
        rows = tuple(by_key[(system, offered)] for by_key in by_run)
        against = [by_key.get(("forwarder", offered)) for by_key in by_run]
        paired = [
            relative(row, forwarder)
            for row, forwarder in zip(rows, against, strict=True)
            if forwarder is not None and system != "forwarder"
        ]
        summaries.append(
            Summary(
                system=system,
                offered=offered,
                label=rate_label(rows[0], valid),
                throughput=Spread(tuple(r.throughput for r in rows)),
                cpu_us=Spread(tuple(r.cpu_us for r in rows)),
                p50_ms=Spread(tuple(r.p50_ms for r in rows)),
                p99_ms=Spread(tuple(r.p99_ms for r in rows)),
                cpu_ratio=Spread(tuple(cpu for _, _, cpu in paired)) if paired else None,
                p99_added_ms=Spread(tuple(p99 for _, p99, _ in paired)) if paired else None,
            )
        )
    return summaries


def render_repeats(runs: Sequence[Run], systems: Sequence[str]) -> Iterator[str]:
    yield ""
    yield (
        f"Median of {len(runs)} runs (lowest–highest); a ratio to the forwarder is taken within "
        "each run:"
    )
    for s in summarize(runs, systems):
        parts = [
            f"{s.throughput.text(lambda v: f'{v:,.0f}')} msg/s",
            f"CPU {s.cpu_us.text(lambda v: f'{v:,.0f}')} µs/msg",
        ]
        if s.cpu_ratio is not None and s.p99_added_ms is not None:
            parts.append(f"{s.cpu_ratio.text(lambda v: f'{v:.2f}')}x the forwarder's CPU")
            parts.append(f"p99 {s.p99_added_ms.text(lambda v: f'{v:+.1f}')} ms over it")
        parts.append(f"p50 {s.p50_ms.text(lambda v: f'{v:.2f}')} ms")
        parts.append(f"p99 {s.p99_ms.text(lambda v: f'{v:.2f}')} ms")
        yield f"  {s.system} at {s.label}: " + ", ".join(parts)
