"""The TUI's "verified" is the verifier's: a tampered log shows as broken in the details
exactly where ``einblick verify`` (``gateway.log.verify``) finds it broken."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.bench.sample import SampleLog
from gateway.log.verify import verify_db
from tests.tui.conftest import NAMES
from tui.local import LocalSource
from tui.model import Detail


async def _detail(db: Path, seq: int) -> Detail:
    source = LocalSource(db, names=NAMES)
    await source.open()
    try:
        detail = await source.detail(seq)
    finally:
        await source.close()
    assert detail is not None
    return detail


def _covered(db: Path) -> tuple[int, int, int]:
    """(chain id, seq of an entry covered by a checkpoint, that checkpoint's id), from a chain
    with at least two entries before its first checkpoint."""
    with sqlite3.connect(db) as conn:
        chain_id, size, cp_id = conn.execute(
            "SELECT chain_id, size, id FROM checkpoints WHERE size >= 3 ORDER BY id LIMIT 1"
        ).fetchone()
        (seq,) = conn.execute(
            "SELECT seq FROM entries WHERE chain_id = ? AND idx = ?", (chain_id, size - 3)
        ).fetchone()
    return int(chain_id), int(seq), int(cp_id)


def _tamper(db: Path, sql: str, params: tuple[object, ...]) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


async def test_an_intact_entry_is_verified(sample: SampleLog) -> None:
    _, seq, _ = _covered(sample.path)
    detail = await _detail(sample.path, seq)
    assert detail.link_valid
    assert detail.checkpoint is not None
    assert detail.checkpoint.signature_valid and detail.checkpoint.head_matches
    assert verify_db(sample.path).ok


async def test_a_changed_later_entry_breaks_the_head_not_the_link(sample: SampleLog) -> None:
    chain_id, seq, _ = _covered(sample.path)
    sample.close()
    _tamper(
        sample.path,
        "UPDATE entries SET hash = zeroblob(32) WHERE seq = (SELECT min(seq) FROM entries"
        " WHERE chain_id = ? AND seq > ?)",
        (chain_id, seq),
    )
    detail = await _detail(sample.path, seq)
    assert detail.link_valid  # this entry itself is intact
    assert detail.checkpoint is not None and detail.checkpoint.signature_valid
    assert not detail.checkpoint.head_matches
    assert not verify_db(sample.path).ok


async def test_a_changed_entry_breaks_its_link(sample: SampleLog) -> None:
    _, seq, _ = _covered(sample.path)
    sample.close()
    _tamper(sample.path, "UPDATE entries SET source = zeroblob(32) WHERE seq = ?", (seq,))
    detail = await _detail(sample.path, seq)
    assert not detail.link_valid
    assert detail.checkpoint is not None and not detail.checkpoint.head_matches
    assert not verify_db(sample.path).ok


async def test_a_forged_checkpoint_signature_is_shown_invalid(sample: SampleLog) -> None:
    _, seq, cp_id = _covered(sample.path)
    sample.close()
    # the signed note is the checkpoint; the signature column beside it is a copy for viewers
    with sqlite3.connect(sample.path) as conn:
        (note,) = conn.execute("SELECT note FROM checkpoints WHERE id = ?", (cp_id,)).fetchone()
    head, _, line = note.rpartition(" ")
    forged = f"{head} {line[:8]}{'A' if line[8] != 'A' else 'B'}{line[9:]}"
    _tamper(sample.path, "UPDATE checkpoints SET note = ? WHERE id = ?", (forged, cp_id))
    detail = await _detail(sample.path, seq)
    assert detail.link_valid
    assert detail.checkpoint is not None and not detail.checkpoint.signature_valid
    problem = verify_db(sample.path).first
    assert problem is not None and "signature" in str(problem)
    _tamper(sample.path, "UPDATE checkpoints SET note = ? WHERE id = ?", (note, cp_id))
    _tamper(sample.path, "UPDATE checkpoints SET signature = zeroblob(64) WHERE id = ?", (cp_id,))
    detail = await _detail(sample.path, seq)
    assert detail.checkpoint is not None and not detail.checkpoint.signature_valid
    problem = verify_db(sample.path).first
    assert problem is not None and "signature" in str(problem)
