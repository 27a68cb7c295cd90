"""The explanation log's benchmark (gateway/bench/log.py) on a small run: its drafts are the mix
it claims, a run checks what it measures (the log verifies, the bundle verifies, the proofs
verify) and prints every figure, and a bundle that does not verify stops it rather than being
timed."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from gateway.bench.log import (
    CUSTOMERS,
    _peak_rss_kb,
    bench_append,
    bench_bundle,
    bench_memory,
    main,
    one_customer_bundle,
    realistic_drafts,
)
from gateway.log.bundle import verify_bundle_file
from gateway.log.keys import Signer


def test_the_drafts_are_the_mix_the_benchmark_describes() -> None:
    drafts = realistic_drafts(1200, rate_per_s=1000)
    outcomes = Counter(d.outcome for d in drafts)
    assert outcomes == {"withheld": 300, "altered": 300, "shared": 600}
    assert len({d.customer for d in drafts}) == 3
    assert len({(d.customer, d.device) for d in drafts}) == 30
    assert len({d.recipient for d in drafts}) == 3
    assert all((d.content is None) == (d.outcome == "withheld") for d in drafts)
    assert (drafts[1].at - drafts[0].at).total_seconds() == pytest.approx(0.001)


def test_a_small_run_checks_and_prints_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--entries", "1500", "--proof-size", "65536", "--memory-sizes", "2100"]
    assert main([*args, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in (
        "explanation log benchmark: 1,500 entries",
        "appended (trees, checkpointed each second, committed):",
        "bundle of 500 entries verified end to end:",
        "by the whole-file checker (a bundle that fails):",
        "peak memory of einblick verify, one customer's 2,100 entries",
        "database verified incl. held content:",
        "at 65,536 entries: inclusion proof read + checked",
        "bytes per entry without erasable content:",
    ):
        assert line in out, line
    assert list(tmp_path.iterdir()) == []  # its databases are gone


def test_a_bundle_that_does_not_verify_is_not_timed(tmp_path: Path) -> None:
    signer = Signer.generate()
    drafts = realistic_drafts(300)
    bench_append(tmp_path / "log.db", drafts, signer)
    with sqlite3.connect(tmp_path / "log.db") as conn:
        conn.execute("UPDATE entries SET at = at + 1 WHERE seq = 10")
    conn.close()
    with pytest.raises(SystemExit, match="the benchmark's bundle does not verify"):
        bench_bundle(tmp_path / "log.db", drafts[9].customer or "", signer)


def test_the_memory_bundle_is_one_customers_and_every_child_is_measured(tmp_path: Path) -> None:
    signer = Signer.generate()
    bundle = one_customer_bundle(tmp_path, 2100, signer)
    verdict = verify_bundle_file(bundle, signer.public)
    assert verdict.ok and verdict.size == 2100 and verdict.customer == CUSTOMERS[0]
    bundle.unlink()
    ((entries, size, streamed, whole, baseline),) = bench_memory(tmp_path, [2100], signer)
    assert (entries, size > 2100 * 146) == (2100, True)
    # kB from each child's rusage: a Python process with the gateway's imports, not this one
    assert all(10_000 < kb < 500_000 for kb in (streamed, whole, baseline))
    assert list(tmp_path.iterdir()) == []


def test_a_child_that_fails_stops_the_memory_benchmark() -> None:
    with pytest.raises(SystemExit, match="exit 3"):
        _peak_rss_kb(["-c", "import sys; sys.exit(3)"])
