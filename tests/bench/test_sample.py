"""The sample log (gateway/bench/sample.py) the TUI's benchmark and tests read: written through
the real ``LogWriter``, it verifies; the same seed gives the same log to the byte (so snapshots
and figures describe one log) and another seed another; it holds the three example customers'
devices and recipients with every outcome, and its withdrawn stream says so."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

from gateway.bench.sample import NAMES, ORIGIN, T0, SampleLog, decisions
from gateway.log.reader import Reader
from gateway.log.verify import verify_db
from policies.decision import Outcome


def _leaves(path: Path) -> list[bytes]:
    with sqlite3.connect(path) as conn:
        return [bytes(r[0]) for r in conn.execute("SELECT hash FROM entries ORDER BY seq")]


def test_the_log_verifies_and_holds_what_it_says(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "a.db")
    log.add(300, batch=100)
    log.close()
    report = verify_db(log.path, public_key=log.signer.public)
    assert report.ok and report.unsigned == 0, report.summary()
    assert log.written == 300
    with sqlite3.connect(log.path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone() == (ORIGIN,)
    reader = Reader.open(log.path)
    try:
        assert reader.count() == 300
    finally:
        reader.close()


def test_the_same_seed_gives_the_same_log_to_the_byte(tmp_path: Path) -> None:
    logs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        log = SampleLog(tmp_path / f"{name}.db", seed=seed)
        log.add(120, start=T0, step=timedelta(seconds=2), batch=50)
        log.close()
        logs.append(_leaves(log.path))
    assert logs[0] == logs[1]
    assert logs[0] != logs[2]


def test_the_stream_covers_every_customer_device_recipient_and_outcome() -> None:
    stream = decisions(seed=7)
    made = [next(stream) for _ in range(2000)]
    assert {m.decision.customer for m in made} == set(NAMES.customers)
    assert {m.decision.device for m in made} == set(NAMES.devices)
    assert {m.decision.recipient for m in made} == set(NAMES.recipients)
    outcomes = Counter(m.decision.outcome for m in made)
    assert set(outcomes) == {Outcome.SHARED, Outcome.ALTERED, Outcome.WITHHELD}
    for m in made:  # both languages, and nothing released on a withheld decision
        assert m.text_de and m.text_en
        assert (m.decision.payload is None) == (m.decision.outcome is Outcome.WITHHELD)


def test_the_withdrawn_stream_withholds_the_vans_events() -> None:
    stream = decisions(seed=7, withdrawn=True)
    events = [
        m.decision
        for m in (next(stream) for _ in range(2000))
        if m.decision.grant == "driver-events"
    ]
    assert events and all(d.outcome is Outcome.WITHHELD for d in events)
    assert {d.reason.code for d in events if d.reason} == {"withdrawn"}
