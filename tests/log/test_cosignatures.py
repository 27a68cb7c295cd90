"""The witnesses' tables: a stored cosignature moves the witness's progress and clears its last
refusal; a size learned from a 409 has no checkpoint; the lines join the note a bundle carries."""

from __future__ import annotations

from gateway.log.bundle import export_customer
from gateway.log.checkpoints import cosignature_lines, latest_checkpoints
from gateway.log.cosignatures import (
    consistency,
    progress,
    record_cosignature,
    record_refusal,
    record_size,
)
from gateway.log.merkle import verify_consistency
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
WITNESS = "witness.example+abcd1234+AQ"


def test_a_cosignature_moves_progress_and_clears_a_refusal(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(5)])
    (checkpoint,) = [c for c in latest_checkpoints(log.conn) if c.chain == C]
    record_refusal(
        log.conn,
        witness=WITNESS,
        chain_id=checkpoint.chain_id,
        status=403,
        reason="x" * 2000,
        at_us=1,
    )
    held = progress(log.conn, WITNESS)[checkpoint.chain_id]
    assert (held.refused_status, len(held.refused_reason or "")) == (403, 1000)
    line = "— witness.example c2lnbmF0dXJl\n"
    record_cosignature(
        log.conn,
        witness=WITNESS,
        name="witness.example",
        checkpoint=checkpoint,
        line=line,
        timestamp=7,
        at_us=2,
    )
    held = progress(log.conn, WITNESS)[checkpoint.chain_id]
    assert (held.size, held.checkpoint_id, held.refused_status) == (5, checkpoint.id, None)
    assert cosignature_lines(log.conn, checkpoint.id) == [line]
    assert export_customer(log.path, C).count(b"witness.example c2lnbmF0dXJl") == 1


def test_a_size_from_a_409_has_no_checkpoint(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(5)])
    (checkpoint,) = [c for c in latest_checkpoints(log.conn) if c.chain == C]
    record_size(log.conn, WITNESS, checkpoint.chain_id, 3, 9)
    held = progress(log.conn, WITNESS)[checkpoint.chain_id]
    assert (held.size, held.checkpoint_id, held.at_us) == (3, None, 9)
    assert progress(log.conn, "another") == {}


def test_consistency_between_two_stored_sizes_verifies(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(3)])
    (small,) = [c for c in latest_checkpoints(log.conn) if c.chain == C]
    log.write([make_draft(i, customer=C) for i in range(3, 11)])
    (large,) = [c for c in latest_checkpoints(log.conn) if c.chain == C]
    proof = consistency(log.conn, small.chain_id, 3, 11)
    root = {
        c: log.conn.execute("SELECT head FROM checkpoints WHERE id = ?", (c.id,)).fetchone()[0]
        for c in (small, large)
    }
    verify_consistency(3, 11, bytes(root[small]), bytes(root[large]), proof)
