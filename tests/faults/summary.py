"""The fault suite's summary: one row per scenario, printed at the end of the pytest run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["LONG", "ROWS", "Row", "format_rows", "record"]

# EINBLICK_FAULT_LONG=1: the long form (more faults, more messages); otherwise the CI form.
LONG = os.environ.get("EINBLICK_FAULT_LONG") == "1"


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    offered: int
    forwarded: int
    withheld: int
    lost: int
    duplicates: int
    faults: int
    bad_inputs: int = 0
    seconds: float = 0.0


ROWS: list[Row] = []


def record(
    scenario: str, audit: dict[str, Any], *, faults: int, bad_inputs: int = 0, seconds: float = 0.0
) -> Row:
    row = Row(
        scenario,
        int(audit["offered"]),
        int(audit["forwarded"]),
        int(audit["withheld"]),
        int(audit["lost"]),
        int(audit["duplicates"]),
        faults,
        bad_inputs,
        seconds,
    )
    ROWS.append(row)
    return row


def format_rows(rows: list[Row]) -> list[str]:
    head = ("scenario", "offered", "forwarded", "withheld", "lost", "dupes", "faults", "bad", "s")
    lines = [f"{head[0]:<34}" + "".join(f"{h:>10}" for h in head[1:])]
    for r in rows:
        values = (r.offered, r.forwarded, r.withheld, r.lost, r.duplicates, r.faults, r.bad_inputs)
        lines.append(
            f"{r.scenario:<34}" + "".join(f"{v:>10}" for v in values) + f"{r.seconds:>10.1f}"
        )
    totals = [sum(getattr(r, k) for r in rows) for k in Row.__slots__[1:8]]
    lines.append(f"{'TOTAL':<34}" + "".join(f"{v:>10}" for v in totals))
    return lines
