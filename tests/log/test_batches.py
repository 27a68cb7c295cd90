"""A batch of the log alone (gateway/log/batches.py): it commits its entries and checkpoint,
or, failing, leaves nothing behind and a writer that goes on from what is committed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.errors import EntryInvalid
from gateway.log.batches import commit_batch
from gateway.log.verify import verify_db
from tests.log.conftest import T0, Log, make_draft


def test_a_batch_commits_with_its_checkpoint_and_verifies(log: Log) -> None:
    commit_batch(log.conn, log.writer, [make_draft(i) for i in range(5)], None)
    assert log.conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)
    commit_batch(log.conn, log.writer, [make_draft(i) for i in range(5, 8)], T0)
    commit_batch(log.conn, log.writer, (), make_draft(9).at)  # a checkpoint alone
    assert not log.conn.in_transaction
    report = verify_db(log.path, public_key=log.signer.public)
    assert report.ok and report.entries == 8 and report.unsigned == 0, report.summary()


def test_a_failing_batch_leaves_nothing_and_the_writer_goes_on(log: Log) -> None:
    commit_batch(log.conn, log.writer, [make_draft(0)], T0)
    bad = replace(make_draft(1), outcome="leaked")  # no outcome the log knows
    with pytest.raises(EntryInvalid):
        commit_batch(log.conn, log.writer, [make_draft(2), bad], T0)
    assert not log.conn.in_transaction
    assert log.conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)
    commit_batch(log.conn, log.writer, [make_draft(3)], make_draft(4).at)
    report = verify_db(log.path, public_key=log.signer.public)
    assert report.ok and report.entries == 2, report.summary()
