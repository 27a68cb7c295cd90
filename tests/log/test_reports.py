"""The database verification report: per log and in total, and a summary that never says
"OK" beside a failure or beside entries no checkpoint covers yet."""

from __future__ import annotations

from gateway.errors import ChainBroken
from gateway.log.reports import ChainReport, VerifyReport


def report(*chains: ChainReport, key_problems: tuple[str, ...] = ()) -> VerifyReport:
    return VerifyReport("box", list(chains), ["ed25519:ab12"], True, list(key_problems))


def test_a_fully_signed_log_is_ok() -> None:
    verified = report(ChainReport("baeckerei", 0, size=5, signed=5, checkpoints=2))
    assert verified.ok and verified.entries == 5 and verified.unsigned == 0
    assert verified.summary().splitlines()[0] == "origin box: 1 chain(s), 5 entries, OK"
    assert "pinned key: ed25519:ab12" in verified.summary()


def test_an_unsigned_tail_is_incomplete_never_ok() -> None:
    tail = report(ChainReport("baeckerei", 0, size=7, signed=5, checkpoints=2))
    assert tail.ok and tail.unsigned == 2  # nothing failed, but not everything is proven
    first = tail.summary().splitlines()[0]
    assert first.endswith("INCOMPLETE") and "OK" not in first
    assert "2 unsigned (after the last checkpoint)" in tail.summary()


def test_a_problem_or_a_key_problem_fails_and_is_named() -> None:
    broken = ChainBroken("baeckerei", 3, "hash mismatch", "ab…", "cd…")
    failed = report(ChainReport("baeckerei", 0, size=3, signed=0, problem=broken))
    assert not failed.ok and failed.first is broken and failed.problems == [broken]
    assert failed.summary().splitlines()[0].endswith("FAILED")
    keys = report(ChainReport("baeckerei", 0, size=2, signed=2), key_problems=("bad rotation",))
    assert not keys.ok and "key problem: bad rotation" in keys.summary()


def test_entries_count_from_a_compaction_anchor() -> None:
    anchored = report(ChainReport("baeckerei", 256, size=300, signed=300, checkpoints=1))
    assert anchored.entries == 44
    assert "44 entries from anchor 256" in anchored.summary()
