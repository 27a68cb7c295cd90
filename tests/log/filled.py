"""A log of two customers for the reader's tests: 40 signed entries, then 4 unsigned ones.

make_draft(i) is entry seq i + 1: odd i are baeckerei-schmidt's (24 with the tail), even i
metallbau-huber's (20); device oven-{i % 3}; withheld when i % 4 == 3; at T0 + 10 ms * i.
"""

from __future__ import annotations

from tests.log.conftest import Log, make_draft

__all__ = ["OTHER", "C", "fill"]

C = "baeckerei-schmidt"
OTHER = "metallbau-huber"


def fill(log: Log) -> Log:
    log.write([make_draft(i, customer=C if i % 2 else OTHER) for i in range(40)])
    log.write([make_draft(i, customer=C) for i in range(40, 44)], checkpoint=False)
    return log
