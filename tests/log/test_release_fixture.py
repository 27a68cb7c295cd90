"""A log written by Einblick 0.1.0 (tests/data/releases/0.1.0, made by make-0.1.0.sh) still
verifies with today's code: every chain, every customer's exported bundle, the consent receipt.

This is the upgrade guarantee's anchor. A change to the log's format must keep these proofs
checkable (by migrating or sealing the old chains), never quietly drop them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.keys import load_public_key
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.verify import verify_db
from gateway.receipts import verify_receipt

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


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_each_customers_bundle_from_the_old_log_verifies_offline(
    old_db: Path, customer: str
) -> None:
    bundle = export_customer(old_db, customer)
    report = verify_bundle(bundle, load_public_key(RELEASE / "signing-2.pub"))
    assert report.ok, report.summary()
    assert [c.customer for c in report.chains] == [customer]


def test_the_old_consent_receipt_verifies() -> None:
    receipt = (RELEASE / "consent-receipt.json").read_bytes()
    fields = verify_receipt(receipt, load_public_key(RELEASE / "signing-1.pub"))
    assert fields["by"] == "Dr. Miriam Berg"
