"""What a process under test costs, read from /proc: CPU seconds (whole process, in clock ticks),
CPU seconds of its live threads in the scheduler's nanoseconds, and its resident memory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "rss_mb", "thread_cpu_seconds"]

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of the whole process, its ended threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def thread_cpu_seconds(pid: int) -> float:
    """CPU time of the process's live threads in nanoseconds' resolution (the scheduler's own
    account, ``schedstat``): an idle gateway uses less than one clock tick of ``stat`` in
    seconds. A thread that ends between two readings drops out of the second: compare two
    readings only over a span in which no thread ends (an idle gateway's)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:
            if task.name == str(pid):
                raise  # the process itself is gone: no figure, not a zero
            # else a thread that ended between the listing and the reading
    return total / 1e9
