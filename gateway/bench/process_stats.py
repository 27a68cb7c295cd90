"""What a process under test costs, read from /proc: CPU seconds (whole process, in clock ticks),
CPU seconds of its live threads in the scheduler's nanoseconds, and its resident memory."""

from __future__ import annotations

import contextlib
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
    seconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9
