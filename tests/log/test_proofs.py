"""One entry's proof as the reader serves it: the verifier's checks, never re-derived; a changed
entry shows as broken, an unsigned one as not yet covered."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from gateway.errors import LogError
from gateway.log.reader import Reader
from tests.log.conftest import Log
from tests.log.filled import OTHER, C, fill


@pytest.fixture
def filled(log: Log) -> Log:
    return fill(log)


@pytest.fixture
def reader(filled: Log) -> Iterator[Reader]:
    opened = Reader.open(filled.path)
    yield opened
    opened.close()


def test_a_signed_entry_links_and_reaches_its_checkpoint(reader: Reader, filled: Log) -> None:
    facts = reader.entry(2)
    assert facts is not None and facts.chain == C
    proof = reader.proof(facts)
    assert proof.link_valid and proof.signature_valid and proof.head_matches
    assert proof.checkpoint is not None and proof.checkpoint.size > facts.line.index
    assert reader.newest_key_fingerprint() == filled.signer.fingerprint
    assert list(reader.public_keys()) == [filled.signer.key_id]


def test_an_unsigned_entry_has_no_checkpoint_yet(reader: Reader) -> None:
    facts = reader.entry(44)
    assert facts is not None
    proof = reader.proof(facts)
    assert proof.link_valid and proof.checkpoint is None
    assert reader.detail(44).checkpoint is None


def test_a_changed_entry_does_not_prove(filled: Log) -> None:
    filled.conn.execute("UPDATE entries SET source = zeroblob(32) WHERE seq = 2")
    reader = Reader.open(filled.path)
    try:
        facts = reader.entry(2)
        assert facts is not None
        proof = reader.proof(facts)
        assert not (proof.link_valid and proof.head_matches)
    finally:
        reader.close()


def test_checkpoints_newest_first_or_the_first_covering_an_index(reader: Reader) -> None:
    rows = reader.checkpoint_rows()
    assert rows and [cp.size for _, cp in rows] == sorted((cp.size for _, cp in rows), reverse=True)
    infos = reader.checkpoint_infos(customer=C)
    assert {i.customer for i in infos} == {C} and all(i.signature_valid for i in infos)
    covering = reader.checkpoint_infos(customer=C, covering=5, limit=1)
    assert len(covering) == 1 and covering[0].size > 5
    assert reader.checkpoint_infos(customer="nobody") == []


def test_a_detail_carries_what_left_and_its_proof_and_is_scoped(filled: Log) -> None:
    reader = Reader.open(filled.path, customer=C)
    try:
        detail = reader.detail(2)
        assert detail.row.customer == C and detail.content is not None
        assert detail.topic == "schmidt/oven-1/telemetry"
        assert detail.checkpoint is not None and detail.checkpoint.signature_valid
        with pytest.raises(LogError, match="another customer's"):
            reader.detail(1)  # OTHER's entry
        assert reader.checkpoint_infos(customer=OTHER) == []
    finally:
        reader.close()


def test_the_reader_refuses_to_write_proofs_by_hand(filled: Log) -> None:
    # The reader only reads: the tampering above needs the writer's own connection.
    reader = Reader.open(filled.path)
    try:
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("UPDATE entries SET source = zeroblob(32) WHERE seq = 2")
    finally:
        reader.close()
