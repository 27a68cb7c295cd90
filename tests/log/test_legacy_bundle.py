"""Exports made by the hash-chain release (``einblick-bundle/v1``) still verify with that
release's key, and a change to one is caught at its entry."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.commands.log import verify_command
from gateway.errors import BundleError
from gateway.log.keys import Signer, load_public_key
from gateway.log.legacy_bundle import FORMAT, verify_bundle_v1

LEGACY = Path(__file__).with_name("data") / "legacy"
BUNDLE = LEGACY / "schmidt-v1.bundle"


def test_an_export_of_the_chain_release_verifies() -> None:
    report = verify_bundle_v1(BUNDLE.read_bytes(), load_public_key(LEGACY / "legacy.pub"))
    assert report.ok and report.pinned
    assert FORMAT == "einblick-bundle/v1"
    assert [c.customer for c in report.chains] == ["schmidt"]
    assert report.chains[0].size > 0


def test_a_changed_field_is_caught_through_the_cli(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(
        bundle=BUNDLE, db=None, customer=None, key=LEGACY / "legacy.pub", out=out, err=err
    )
    assert code == 0 and "legacy bundle (einblick-bundle/v1" in out.getvalue()
    changed = tmp_path / "changed.bundle"
    changed.write_bytes(BUNDLE.read_bytes().replace(b'"temp"', b'"Temp"', 1))
    with pytest.raises(BundleError, match="body does not match its digest"):
        verify_bundle_v1(changed.read_bytes(), load_public_key(LEGACY / "legacy.pub"))
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(
        bundle=changed, db=None, customer=None, key=LEGACY / "legacy.pub", out=out, err=err
    )
    assert code == 1 and "error:" in err.getvalue()


def test_another_key_or_a_cut_file_fails() -> None:
    report = verify_bundle_v1(BUNDLE.read_bytes(), Signer.generate().public)
    assert not report.ok
    with pytest.raises(BundleError):
        verify_bundle_v1(b"{not json\n", load_public_key(LEGACY / "legacy.pub"))
