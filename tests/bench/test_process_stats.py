"""The benchmark's readings of a process from /proc (gateway/bench/process_stats.py), taken of
this test's own process while it works."""

from __future__ import annotations

import hashlib
import os
import threading
import time

from gateway.bench.process_stats import cpu_seconds, rss_mb, thread_cpu_seconds


def _burn(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        hashlib.sha256(b"x" * 4096).digest()


def test_cpu_readings_grow_by_the_work_done_even_on_another_thread() -> None:
    pid = os.getpid()
    ticks0, threads0 = cpu_seconds(pid), thread_cpu_seconds(pid)
    worker = threading.Thread(target=_burn, args=(0.2,))
    worker.start()
    _burn(0.1)  # its own CPU, read while the worker still runs
    during = thread_cpu_seconds(pid) - threads0
    worker.join()
    # The main thread's 0.1 s alone is already in the nanosecond reading; the ended worker is in
    # the whole-process reading (ticks of 10 ms: a margin of two).
    assert during >= 0.09
    assert cpu_seconds(pid) - ticks0 >= 0.28


def test_resident_memory_is_read_in_megabytes() -> None:
    before = rss_mb(os.getpid())
    block = bytearray(64 * 1024 * 1024)  # touched: resident
    assert rss_mb(os.getpid()) - before >= 60
    del block
