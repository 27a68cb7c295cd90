"""A log written by Einblick 0.1.0 (tests/data/releases/0.1.0, made by make-0.1.0.sh) still
verifies with today's code: every chain, every customer's exported bundle, the consent receipt.

This is the upgrade guarantee's anchor. A change to the log's format must keep these proofs
checkable (by migrating or sealing the old chains), never quietly drop them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import load_public_key
from gateway.log.migrations import SCHEMA_VERSION, schema_version
from gateway.log.verify import verify_db
from gateway.messages.store import Store
from gateway.rights.receipts import verify_receipt

RELEASE = Path(__file__).resolve().parents[1] / "data" / "releases" / "0.1.0"
CUSTOMERS = ("baeckerei-schmidt", "berg-partner", "spedition-weber")


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    # A copy: the checked-in file stays exactly as that release wrote it.
    copy = tmp_path / "einblick.db"
    shutil.copyfile(RELEASE / "einblick.db", copy)
    return copy


def test_the_old_log_verifies_whole_with_the_current_key(old_db: Path) -> None:
    report = verify_db(old_db, public_key=load_public_key(RELEASE / "signing-2.pub"))
    assert report.ok, report.summary()
    assert report.pinned
    assert {c.customer for c in report.chains} >= set(CUSTOMERS)
    assert report.entries >= 100
    assert report.unsigned == 0


def test_the_old_log_names_a_foreign_key_as_untrusted(old_db: Path) -> None:
    foreign = "00" * 32
    report = verify_db(old_db, public_key=load_public_key(foreign))
    assert not report.ok


def test_the_old_consent_receipt_verifies() -> None:
    receipt = (RELEASE / "consent-receipt.json").read_bytes()
    signed = verify_receipt(receipt, load_public_key(RELEASE / "signing-1.pub"))
    assert signed.fields["by"] == "Dr. Miriam Berg"


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema_version(conn)
    finally:
        conn.close()


async def test_the_old_log_is_upgraded_by_the_gateways_store_and_every_proof_still_verifies(
    old_db: Path,
) -> None:
    assert _version(old_db) == 1
    store = Store(old_db)  # exactly what the gateway opens at start
    await store.open()
    await store.close()
    assert _version(old_db) == SCHEMA_VERSION
    key = load_public_key(RELEASE / "signing-2.pub")
    report = verify_db(old_db, public_key=key)
    assert report.ok, report.summary()
    assert report.unsigned == 0
    assert {c.customer for c in report.chains} >= set(CUSTOMERS)
    conn = sqlite3.connect(old_db)
    try:
        # every old chain is sealed where it stood: its tree starts after its last entry and
        # keeps that entry's hash for the tree's first entry (written at the writer's start)
        sealed = conn.execute(
            "SELECT c.name, t.base, t.legacy_head = (SELECT hash FROM entries e WHERE"
            " e.chain_id = c.id ORDER BY idx DESC LIMIT 1) FROM trees t JOIN chains c"
            " ON c.id = t.chain_id"
        ).fetchall()
    finally:
        conn.close()
    assert {name for name, _, _ in sealed} >= set(CUSTOMERS)
    assert all(base > 0 and same for _, base, same in sealed)
    for customer in CUSTOMERS:
        verdict = verify_bundle(export_customer(old_db, customer), key)
        assert verdict.ok and verdict.size == 0, verdict.problem
