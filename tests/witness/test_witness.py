"""``einblick witness init`` and ``serve`` as an installer runs them."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.note import COSIGNATURE_TYPE, Signer, Verifier
from tests.witness.conftest import einblick


async def test_init_prints_a_cosigner_vkey_matching_the_key_it_wrote(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    code, out, err = await einblick("witness", "init", "--dir", str(directory), "--name",
                                    "witness.example/w1")  # fmt: skip
    assert code == 0, err
    verifier = Verifier.parse(out.strip())
    assert (verifier.name, verifier.sig_type) == ("witness.example/w1", COSIGNATURE_TYPE)
    assert (directory / "witness.key").stat().st_mode & 0o077 == 0
    # A second init never replaces the key that customers already trust.
    key_before = (directory / "witness.key").read_bytes()
    code, _, err = await einblick(
        "witness", "init", "--dir", str(directory), "--name", "x.example/w"
    )
    assert code == 2
    assert "refusing to overwrite" in err
    assert (directory / "witness.key").read_bytes() == key_before


async def test_init_refuses_a_name_with_spaces(tmp_path: Path) -> None:
    code, _, err = await einblick(
        "witness", "init", "--dir", str(tmp_path / "w"), "--name", "my witness"
    )
    assert code == 2
    assert "without spaces" in err
    assert not (tmp_path / "w" / "witness.key").exists()


async def test_serve_refuses_a_broken_logs_file_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    code, _, _ = await einblick("witness", "init", "--dir", str(directory), "--name", "w.example/1")
    assert code == 0
    # A witness key where a log key belongs: the installer is told which kind is expected.
    wrong = Signer("log.example/a", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE).verifier.vkey
    (directory / "logs.yaml").write_text(
        f"logs:\n  - origin: log.example/a\n    keys: ['{wrong}']\n"
    )
    code, _, err = await einblick(
        "witness", "serve", "--dir", str(directory), "--listen", "127.0.0.1:0"
    )
    assert code == 2
    assert "logs.yaml: logs.0.keys: log.example/a: a log signs checkpoints with an Ed25519" in err
