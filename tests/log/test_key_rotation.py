"""A key rotation (gateway/log/key_rotation.py): everything before it is signed by the old key,
every log gets one record signed by both keys at its own index, the ``keys`` table keeps the
0.1.0 record, the new key signs only after the commit, and rotating to the current key is
refused before anything is written."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from gateway.errors import LogError
from gateway.log.chain import rotation_message
from gateway.log.entry import us_from_at
from gateway.log.key_rotation import rotate_key
from gateway.log.keys import PublicKey, Signer
from gateway.log.leaf import rotation_message_v2
from gateway.log.verify import verify_db
from tests.log.conftest import ORIGIN, T0, Log, make_draft

C = "baeckerei-schmidt"


def _rotations(log: Log) -> dict[str, tuple[int, dict[str, str]]]:
    """Each log's rotation record: (its index, its parameters)."""
    rows = log.conn.execute(
        "SELECT c.name, e.idx, b.doc FROM entries e JOIN chains c ON c.id = e.chain_id"
        " JOIN bodies b ON b.id = e.body_id"
    ).fetchall()
    found = {}
    for name, idx, doc in rows:
        body = orjson.loads(doc)
        if body["kind"] == "key_rotation":
            found[name] = (idx, body["reason_params"])
    return found


def test_every_log_gets_a_record_signed_by_both_keys(log: Log, signer: Signer) -> None:
    log.write([make_draft(i) for i in range(3)])  # only the customer's log has entries
    log.write([make_draft(3)], checkpoint=False)  # grown since its last checkpoint
    new = Signer.generate()
    at = T0 + timedelta(hours=1)
    log.conn.execute("BEGIN IMMEDIATE")
    entry = log.writer.rotate_key(new, at)  # the writer's entry point: rotate_key, then the key
    assert log.writer.signer.key_id == new.key_id  # later checkpoints of this transaction
    log.conn.execute("COMMIT")
    log.writer.committed()

    assert entry.customer == "_gateway" and entry.index == 0  # the box's log, created for it
    records = _rotations(log)
    assert {name: idx for name, (idx, _) in records.items()} == {C: 4, "_gateway": 0}
    for name, (idx, params) in records.items():
        assert (params["old"], params["new"]) == (signer.public.raw.hex(), new.public.raw.hex())
        message = rotation_message_v2(
            log.writer.origin_of(name), idx, signer.public.raw, new.public.raw
        )
        assert signer.public.verify(bytes.fromhex(params["sig_old"]), message)
        assert new.public.verify(bytes.fromhex(params["sig_new"]), message)
    # The tail before the rotation was signed with the old key, in the same transaction.
    (size, key_id) = log.conn.execute(
        "SELECT size, key_id FROM checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert (size, bytes(key_id)) == (4, signer.key_id)
    # The 0.1.0 record in ``keys``, which the legacy path checks.
    prev, sig_old, sig_new = log.conn.execute(
        "SELECT prev_key_id, sig_old, sig_new FROM keys WHERE key_id = ?", (new.key_id,)
    ).fetchone()
    v1 = rotation_message(ORIGIN, signer.public.raw, new.public.raw, us_from_at(at))
    assert bytes(prev) == signer.key_id
    assert PublicKey(signer.public.raw).verify(bytes(sig_old), v1)
    assert new.public.verify(bytes(sig_new), v1)

    log.write([make_draft(5)])
    assert log.writer.signer.key_id == new.key_id
    report = verify_db(log.path, public_key=signer.public)
    assert report.ok and report.unsigned == 0, report.summary()


def test_rotating_to_the_current_key_is_refused_before_anything_is_written(
    log: Log, signer: Signer
) -> None:
    log.write([make_draft(0)], checkpoint=False)
    log.conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(LogError, match=f"the new key is the current key \\({signer.fingerprint}"):
        rotate_key(log.conn, log.writer, signer, T0 + timedelta(hours=1))
    assert log.conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)
    assert log.conn.execute("SELECT count(*) FROM keys").fetchone() == (1,)
    log.conn.execute("ROLLBACK")
    log.writer.rolled_back()


def test_a_rotation_rolled_back_leaves_the_old_key_signing(log: Log, signer: Signer) -> None:
    log.write([make_draft(0)])
    log.conn.execute("BEGIN IMMEDIATE")
    log.writer.rotate_key(Signer.generate(), T0 + timedelta(hours=1))
    log.conn.execute("ROLLBACK")
    log.writer.rolled_back()
    assert log.writer.signer.key_id == signer.key_id
    log.write([make_draft(1)])
    assert _rotations(log) == {}
    report = verify_db(log.path, public_key=signer.public)
    assert report.ok and report.unsigned == 0, report.summary()
