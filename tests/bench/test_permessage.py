"""The per-message benchmark (gateway/bench/permessage.py) on a small run: every step runs on
every message of einblick bench's load (each decided, released, drafted, appended, queued and
let through at send time), each step gets its figure, and the command prints them all."""

from __future__ import annotations

import pytest

from gateway.bench.permessage import STEPS, main, run


def test_a_small_run_puts_every_message_through_every_step() -> None:
    figures, counts = run(120, 2)
    # The benchmark customer's one grant releases every load message (one field rounded, one
    # withheld): one decision, one entry, one outbox row and one unchanged row at send time each.
    assert counts == {
        "messages": 120,
        "decisions": 120,
        "released": 120,
        "appended": 120,
        "inserted": 120,
        "settled": 120,
        "left": 120,
    }
    assert set(figures) == set(STEPS)
    assert all(value > 0 for value in figures.values())


def test_main_prints_every_step(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sys.argv", ["gateway.bench.permessage", "--messages", "60", "--repeats", "1"]
    )
    main()
    out = capsys.readouterr().out
    assert "60 messages of einblick bench's load, best of 1 passes (60 released" in out
    for name in (*STEPS, "sum"):
        assert f"\n{name} " in out, name
