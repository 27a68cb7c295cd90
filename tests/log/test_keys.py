"""Key files: owner-only permissions, formats, fingerprints."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.errors import KeyFileError
from gateway.log.keys import Signer, load_public_key


def test_generated_key_is_owner_only_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    signer = Signer.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Signer.load(path)
    assert loaded.key_id == signer.key_id
    assert loaded.public.verify(loaded.sign(b"m"), b"m")
    assert not loaded.public.verify(loaded.sign(b"m"), b"n")


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    Signer.generate(path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="expected mode 0600, found 0640"):
        Signer.load(path)


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    Signer.generate(tmp_path / "k")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        Signer.generate(tmp_path / "k")


def test_raw_seed_and_garbage(tmp_path: Path) -> None:
    raw = tmp_path / "raw.key"
    raw.write_bytes(bytes(range(32)))
    raw.chmod(0o600)
    assert len(Signer.load(raw).public.raw) == 32
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not a key at all, sorry")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="expected an unencrypted PEM Ed25519 key"):
        Signer.load(bad)


def test_public_key_forms_and_fingerprint(tmp_path: Path) -> None:
    signer = Signer.generate()
    pem = tmp_path / "k.pub"
    pem.write_text(signer.public.pem())
    assert load_public_key(pem) == signer.public
    assert load_public_key(signer.public.raw.hex()) == signer.public
    assert load_public_key(signer.public.pem()) == signer.public
    fp = signer.fingerprint
    assert fp.startswith("ed25519:") and len(fp.split()) == 8
    with pytest.raises(KeyFileError, match="cannot read public key"):
        load_public_key(str(tmp_path / "nope"))  # missing file -> clear error


def test_private_key_is_not_taken_as_public(tmp_path: Path) -> None:
    Signer.generate(tmp_path / "k")
    with pytest.raises(KeyFileError, match="this is a private key"):
        load_public_key(tmp_path / "k")
