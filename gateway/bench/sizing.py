"""Sizing for installers: what a site's message rate costs of one core, here and on the box.

From the benchmark's Einblick rows (and the forwarder's, for the ratio): CPU per message, the
fraction of one core that rate takes, and the same on the target box assuming it is ``slowdown``
times slower per core than the machine that ran the benchmark. The slowdown is an assumption,
stated as one in the output; ``einblick bench --on-this-box`` on the box itself measures instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

__all__ = ["PI_SLOWDOWN", "core_fraction", "render_sizing"]

# A Raspberry Pi 4 class core against a current x86 server core, for single-threaded CPython:
# three to four times slower (issue #19). An assumption, not a measurement.
PI_SLOWDOWN = 3.5


class _Row(Protocol):
    @property
    def system(self) -> str: ...
    @property
    def offered(self) -> float: ...
    @property
    def cpu_us(self) -> float: ...
    @property
    def throughput(self) -> float: ...
    @property
    def idle_share(self) -> float | None: ...


def core_fraction(cpu_us_per_msg: float, rate: float, slowdown: float = 1.0) -> float:
    """The share of one core that ``rate`` msg/s takes at ``cpu_us_per_msg`` (on a core
    ``slowdown`` times slower)."""
    return cpu_us_per_msg * slowdown * rate / 1e6


def render_sizing(
    results: Sequence[_Row], slowdown: float, *, measured_here: bool = False
) -> Iterator[str]:
    rows = [r for r in results if r.system == "einblick"]
    if not rows:
        return
    forwarder = {r.offered: r for r in results if r.system == "forwarder"}
    target = (
        "this box (measured here)"
        if measured_here
        else f"a box {slowdown:g}x slower per core (ASSUMED: Raspberry-Pi-class; run "
        "`einblick bench --on-this-box` on the box itself to measure instead)"
    )
    yield ""
    yield f"Sizing: Einblick's CPU per message and the share of one core it takes, on {target}"
    yield (
        f"  {'rate':>9} {'msg/s':>8} {'CPU µs/msg':>10} {'× forwarder':>11} {'core here':>9} "
        f"{'µs/msg there':>12} {'core there':>10} {'msg/s per core there':>20}"
    )
    for r in rows:
        label = "max" if r.offered <= 0 else f"{r.offered:,.0f}/s"
        ratio = (
            f"{r.cpu_us / forwarder[r.offered].cpu_us:.2f}x"
            if r.offered in forwarder and forwarder[r.offered].cpu_us > 0
            else "-"
        )
        here = core_fraction(r.cpu_us, r.throughput)
        there = core_fraction(r.cpu_us, r.throughput, slowdown)
        per_core = 1e6 / (r.cpu_us * slowdown) if r.cpu_us > 0 else 0.0
        yield (
            f"  {label:>9} {r.throughput:>8,.0f} {r.cpu_us:>10.0f} {ratio:>11} {here:>9.0%} "
            f"{r.cpu_us * slowdown:>12.0f} {there:>10.0%} {per_core:>20,.0f}"
        )
    idle = next((r.idle_share for r in rows if r.idle_share is not None), None)
    if idle is not None:
        yield f"  Idle (no messages): {idle:.2%} of a core here, {idle * slowdown:.2%} there."
    example = 300.0
    paced = sorted((r for r in rows if r.offered > 0), key=lambda r: r.offered)
    if len(paced) >= 2:
        # Cost per second = a fixed part (checkpoints, timers, the batch costs of a quiet site)
        # + a marginal cost per message: the line through the two lowest paced rows.
        lo, hi = paced[0], paced[1]
        f_lo = core_fraction(lo.cpu_us, lo.throughput)
        f_hi = core_fraction(hi.cpu_us, hi.throughput)
        marginal = (f_hi - f_lo) / (hi.throughput - lo.throughput) * 1e6
        fixed = f_lo - marginal * lo.throughput / 1e6
        need = (fixed + marginal * example / 1e6) * slowdown
        yield (
            f"  Between {lo.offered:,.0f}/s and {hi.offered:,.0f}/s (the line through both rows): "
            f"~{fixed:.0%} of a core here plus ~{marginal:,.0f} µs per message; below "
            f"{lo.offered:,.0f}/s the fixed part shrinks towards the idle figure. A site at "
            f"{example:,.0f} msg/s needs ~{need:.0%} of one core there. Size so a core stays "
            "below ~70 % busy: above that, queueing adds latency."
        )
        return
    if not paced:
        # A "max" row's cost per message is the lowest of all (batches are full): a site sized
        # from it would get too small a box.
        yield (
            "  No paced row to size a site from: run a paced rate too (e.g. --rates 100,1000). "
            "Size so a core stays below ~70 % busy."
        )
        return
    low = paced[0]
    # The cost per message falls as the rate rises: sized from a higher rate, a site's share
    # comes out too small; from a lower one, too large (the safe side).
    direction = (
        "errs high"
        if low.offered <= example
        else f"errs LOW: run a rate at or below {example:,.0f}/s to size it"
    )
    yield (
        f"  e.g. a site at {example:,.0f} msg/s needs "
        f"~{core_fraction(low.cpu_us, example, slowdown):.0%} of one core there (at the "
        f"{low.offered:,.0f}/s row's CPU per message; the cost per message falls as the rate "
        f"rises, so this {direction}). Size so a core stays below ~70 % busy."
    )
