"""The whole-gateway benchmark's figures: one row per system and rate, and the table
``einblick bench`` prints, with the rule that a "max" row is called one only when the load
generator was not the limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from annotated_types import Le

from gateway.bench.commits import CommitCost
from gateway.bench.load import GeneratorResult
from gateway.config import PipelineConfig

__all__ = [
    "GENERATOR_PROCESSES",
    "MAX_MARGIN",
    "MAX_WAKE_MS",
    "UNPACED",
    "WAKE_PREFIX",
    "Result",
    "Run",
    "max_rows_valid",
    "rate_label",
    "relative",
    "render",
    "wake_interval_ms",
]

GENERATOR_PROCESSES = 2
# A "max" row is called that only if the generator offered this many times what the fastest
# system sustained; otherwise the row measures the generator.
MAX_MARGIN = 3.0

# The gateway as a system under test, with its default wake interval ("einblick"), with pacing
# off ("einblick-unpaced"), or with another one: "einblick-wake10" is pipeline.wake_interval_ms 10,
# the trade of latency for CPU an installer can make (gateway/messages/pacing.py).
UNPACED = "einblick-unpaced"
WAKE_PREFIX = "einblick-wake"
# The configuration's own limit, read from its model so the two cannot differ.
MAX_WAKE_MS = int(
    next(
        float(m.le)  # type: ignore[arg-type]  # Le's bound is typed as a protocol
        for m in PipelineConfig.model_fields["wake_interval_ms"].metadata
        if isinstance(m, Le)
    )
)


def wake_interval_ms(system: str) -> int | None:
    """The wake interval a gateway system sets; None: its default (or not a gateway system, or
    not a name this benchmark knows: ``einblick-wake`` and 1 to ``MAX_WAKE_MS`` ms, written
    plainly; no pacing is ``einblick-unpaced``, the name "What pacing saves" looks for)."""
    if system == UNPACED:
        return 0
    digits = system.removeprefix(WAKE_PREFIX)
    plain = digits != system and digits.isascii() and digits.isdigit() and digits[0] != "0"
    if not plain or len(digits) > len(str(MAX_WAKE_MS)):  # longer: over the limit anyway
        return None
    value = int(digits)
    return value if value <= MAX_WAKE_MS else None


def _variant(system: str) -> str:
    """How the summaries name a gateway system beside the default one."""
    wake = wake_interval_ms(system)
    if wake is None:
        return ""
    return " (unpaced)" if wake == 0 else f" (wake {wake} ms)"


@dataclass(frozen=True, slots=True)
class Result:
    system: str
    offered: float  # msg/s asked of the load generator (0: as fast as it can)
    published: int
    unique: int
    lost: int | None  # None: a "max" row, whose backlog is not waited for
    duplicates: int | None
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # CPU of the forwarding process per message
    rss_mb: float
    log_bytes: float | None  # bytes of log per message (Einblick only)
    # Einblick only: (p50 ms, p99 ms) per stage inside the gateway, from its own status.
    stages: dict[str, tuple[float, float]] | None = None
    generator_rate: float = 0.0  # what the load generator actually offered, msg/s
    backlog_left: int | None = None  # "max" rows: messages still waiting when measuring ended
    # Einblick's first row: the share of one core it took idle (no messages) just before.
    idle_share: float | None = None

    @property
    def throughput(self) -> float:
        return self.unique / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Run:
    results: list[Result]
    ceiling: GeneratorResult | None  # the generator into a bare broker (when a "max" row ran)
    commits: CommitCost | None = None  # one batch's commit with and without fsync, same disk


def relative(r: Result, forwarder: Result) -> tuple[float, float, float]:
    """A row against the plain paho forwarder's at the same rate in the same run: throughput as a
    ratio, p99 added in ms, CPU per message as a ratio."""
    return (
        r.throughput / max(forwarder.throughput, 1),
        r.p99_ms - forwarder.p99_ms,
        r.cpu_us / max(forwarder.cpu_us, 1),
    )


def max_rows_valid(run: Run) -> tuple[bool, float]:
    """A "max" row is the system's maximum only if the generator offered at least
    ``MAX_MARGIN`` times what the fastest system sustained; (valid, fastest)."""
    maxed = [r for r in run.results if r.offered <= 0]
    fastest = max((r.throughput for r in maxed), default=0.0)
    offered = min((r.generator_rate for r in maxed), default=0.0)
    dry = any((r.backlog_left or 0) <= 0 for r in maxed)  # the system caught up: not its max
    return offered >= MAX_MARGIN * fastest and not dry, fastest


def _offered_label(r: Result, valid: bool) -> str:
    if r.offered > 0:
        return f"{r.offered:,.0f}"
    return "max" if valid else "gen-bound"


def rate_label(r: Result, valid: bool) -> str:
    """The row's rate as the summaries below the table name it: "1,000/s", "max"."""
    label = _offered_label(r, valid)
    return label if r.offered <= 0 else f"{label}/s"


def render(run: Run) -> Iterator[str]:
    results = run.results
    valid, fastest = max_rows_valid(run)
    yield (
        f"{'system':<16} {'offered/s':>9} {'msg/s':>8} {'lost':>5} {'dup':>5} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'CPU µs/msg':>10} {'RSS MB':>7} {'log B/msg':>9}"
    )
    for r in results:
        offered = _offered_label(r, valid)
        log = f"{r.log_bytes:,.0f}" if r.log_bytes is not None else "-"
        lost = "-" if r.lost is None else str(r.lost)
        dup = "-" if r.duplicates is None else str(r.duplicates)
        yield (
            f"{r.system:<16} {offered:>9} {r.throughput:>8,.0f} {lost:>5} {dup:>5} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.cpu_us:>10.0f} {r.rss_mb:>7.1f} {log:>9}"
        )
    maxed = [r for r in results if r.offered <= 0]
    if maxed:
        yield ""
        if run.ceiling is not None:
            yield (
                f"Load generator ({GENERATOR_PROCESSES} processes, raw QoS 1): its own ceiling "
                f"{run.ceiling.offered_rate:,.0f} msg/s into a bare Mosquitto with a null "
                "subscriber, same run."
            )
        offered = ", ".join(
            f"{r.system} {r.generator_rate:,.0f} (backlog left {r.backlog_left:,})" for r in maxed
        )
        yield (
            "Max rows: a backlog written while the receiving side was frozen, then drained; "
            f"offered msg/s: {offered}."
        )
        if valid:
            yield (
                f"Every max row was offered ≥ {MAX_MARGIN:g}x the fastest system's {fastest:,.0f} "
                "msg/s and none ran dry: they measure the systems. Latency there is the backlog's "
                "age; lost/dup are not counted (the rest of the backlog is left behind)."
            )
        else:
            yield (
                f"NOT a maximum: the generator offered less than {MAX_MARGIN:g}x the fastest "
                f"system's {fastest:,.0f} msg/s, or a system drained its whole backlog, so these "
                "rows (gen-bound) measure the generator."
            )
    by = {(r.system, r.offered): r for r in results}
    staged = [(r, r.stages) for r in results if r.stages]
    if staged:
        yield ""
        yield "Inside Einblick (its own figures over its last 10,000 messages, p50 / p99 ms):"
        for r, stages in staged:
            label = rate_label(r, valid)
            parts = ", ".join(f"{k} {p50:.1f} / {p99:.1f}" for k, (p50, p99) in stages.items())
            yield f"  at {label:>9}{_variant(r.system)}: {parts}"
    yield ""
    yield "Einblick relative to the no-policy paho forwarder, same run:"
    for r in results:
        if not r.system.startswith("einblick") or ("forwarder", r.offered) not in by:
            continue
        throughput, p99, cpu = relative(r, by[("forwarder", r.offered)])
        label = rate_label(r, valid)
        yield (
            f"  at {label:>9}{_variant(r.system)}: throughput {throughput:.2f}x, "
            f"p99 {p99:+.1f} ms, CPU {cpu:.2f}x per message"
        )
    paced = [r for r in results if r.system == "einblick" and (UNPACED, r.offered) in by]
    if paced:
        yield ""
        yield "What pacing saves: Einblick against itself with pipeline.wake_interval_ms 0, same run:"
        for r in paced:
            u = by[(UNPACED, r.offered)]
            label = rate_label(r, valid)
            yield (
                f"  at {label:>9}: CPU {r.cpu_us / max(u.cpu_us, 1):.2f}x per message, "
                f"p50 {r.p50_ms - u.p50_ms:+.1f} ms, p99 {r.p99_ms - u.p99_ms:+.1f} ms"
            )
