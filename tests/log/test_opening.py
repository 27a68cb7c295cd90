"""Opening a log database (gateway/log/opening.py): the writer claims it for one origin and one
key and refuses any other, and closes in one commit what a crash or 0.1.0 left open: a tail
without a signature is signed, a 0.1.0 chain sealed; a clean log is left as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.errors import LogError
from gateway.log.keys import Signer
from gateway.log.opening import claim, close_tail
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter
from tests.log.conftest import ORIGIN, Log, fresh_db, make_draft

LEGACY = Path(__file__).with_name("data") / "legacy"


def test_a_new_log_is_claimed_for_its_origin_and_key(tmp_path: Path, signer: Signer) -> None:
    conn = fresh_db(tmp_path / "log.db")
    claim(conn, signer, ORIGIN)
    assert conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone() == (ORIGIN,)
    assert conn.execute("SELECT key_id, public FROM keys").fetchall() == [
        (signer.key_id, signer.public.raw)
    ]
    claim(conn, signer, ORIGIN)  # the same box again: nothing more is written
    assert conn.execute("SELECT count(*) FROM keys").fetchone() == (1,)


def test_another_boxs_origin_or_key_is_refused_before_anything_is_written(
    log: Log, signer: Signer
) -> None:
    log.write([make_draft(i) for i in range(3)])
    before = log.conn.execute("SELECT count(*) FROM entries").fetchone()
    with pytest.raises(LogError, match=f"expected origin 'edge-99', found '{ORIGIN}'"):
        LogWriter(log.conn, signer, "edge-99")
    other = Signer.generate()
    with pytest.raises(LogError, match=f"signed by {signer.fingerprint}.*{other.fingerprint}"):
        LogWriter(log.conn, other, ORIGIN)
    assert log.conn.execute("SELECT count(*) FROM entries").fetchone() == before
    assert log.conn.execute("SELECT count(*) FROM keys").fetchone() == (1,)
    assert not log.conn.in_transaction


def test_a_tail_a_crash_left_unsigned_is_signed_at_the_next_start(
    tmp_path: Path, signer: Signer
) -> None:
    log = Log(tmp_path / "log.db", signer)
    log.write([make_draft(i) for i in range(4)])
    log.write([make_draft(i) for i in range(4, 7)], checkpoint=False)  # then the crash
    log.close()
    assert verify_db(log.path).unsigned == 3
    again = Log(log.path, signer)  # opening closes the tail
    try:
        report = verify_db(log.path)
        assert report.ok and report.unsigned == 0, report.summary()
        assert again.writer.unsigned() == 0
        # Nothing open any more: closing again writes nothing.
        checkpoints = again.conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        assert close_tail(again.conn, again.writer) is False
        assert again.conn.execute("SELECT count(*) FROM checkpoints").fetchone() == checkpoints
    finally:
        again.close()


def test_a_0_1_0_chain_is_sealed_once(tmp_path: Path) -> None:
    path = tmp_path / "einblick.db"
    shutil.copyfile(LEGACY / "legacy.db", path)
    seed = bytes.fromhex((LEGACY / "legacy.seed").read_text().strip())
    signer = Signer(Ed25519PrivateKey.from_private_bytes(seed))
    conn = fresh_db(path)  # upgrades the schema; the chains are not sealed yet
    try:
        conn.execute("BEGIN IMMEDIATE")
        writer = LogWriter(conn, signer, "edge-legacy")  # inside a transaction: no tail closed
        conn.execute("COMMIT")
        writer.committed()
        unsealed = {name: base for name, base, _ in writer.unsealed()}
        assert unsealed == {"schmidt": 11, "huber": unsealed["huber"]}
        assert close_tail(conn, writer) is True
        assert writer.unsealed() == []
        seals = conn.execute(
            "SELECT count(*) FROM entries e JOIN trees t ON t.chain_id = e.chain_id"
            " WHERE e.idx = t.base"
        ).fetchone()
        assert seals == (2,)
        assert close_tail(conn, writer) is False  # sealed once, never again
        report = verify_db(path, public_key=signer.public)
        assert report.ok and report.unsigned == 0, report.summary()
    finally:
        conn.close()
