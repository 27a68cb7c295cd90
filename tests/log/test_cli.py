"""``einblick verify | export | key``: exit codes, stdout for data, diagnosis naming the entry."""

from __future__ import annotations

import argparse
import io
import sqlite3
from pathlib import Path

import pytest

from gateway.commands.log import (
    export_command,
    key_generate_command,
    key_rotate_command,
    key_show_command,
    register,
    verify_command,
)
from gateway.errors import LogError
from gateway.log.keys import Signer
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="einblick")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_verify_db_and_bundle(log: Log, tmp_path: Path, signer: Signer) -> None:
    log.write([make_draft(i) for i in range(10)])
    pub = tmp_path / "log.pub"
    pub.write_text(signer.public.pem())
    out, err = io.StringIO(), io.StringIO()
    assert verify_command(bundle=None, db=log.path, customer=None, key=pub, out=out, err=err) == 0
    assert "OK" in out.getvalue()
    bundle = tmp_path / "b.jsonl"
    assert export_command(db=log.path, customer=C, since=None, out_path=bundle) == 0
    args = parse(["verify", str(bundle), "--key", str(pub)])
    assert args.func(args) == 0
    conn = sqlite3.connect(log.path)
    conn.execute("UPDATE entries SET at = at + 1 WHERE idx = 4")
    conn.commit()
    conn.close()
    err = io.StringIO()
    code = verify_command(bundle=None, db=log.path, customer=C, key=pub, out=io.StringIO(), err=err)
    assert code == 1
    assert f"error: entry 4 of customer {C}: hash mismatch: expected" in err.getvalue()


def test_bundle_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="needs --key"):
        verify_command(bundle=tmp_path / "b", db=None, customer=None, key=None)


def test_key_commands(tmp_path: Path, log: Log, signer: Signer) -> None:
    out = io.StringIO()
    assert key_generate_command(path=tmp_path / "new.key", out=out) == 0
    assert (tmp_path / "new.key.pub").exists()
    out = io.StringIO()
    assert key_show_command(key=tmp_path / "new.key.pub", out=out) == 0
    shown = out.getvalue()
    assert "BEGIN PUBLIC KEY" in shown and "fingerprint: ed25519:" in shown
    log.write([make_draft(0)])
    log.close()
    assert signer.path is not None
    out = io.StringIO()
    code = key_rotate_command(db=log.path, key=signer.path, new_key=tmp_path / "new.key", out=out)
    assert code == 0 and "rotated" in out.getvalue()
    code = verify_command(
        bundle=None,
        db=log.path,
        customer=None,
        key=tmp_path / "new.key.pub",
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert code == 0


def test_key_rotate_refuses_while_a_gateway_holds_the_data_directory(
    tmp_path: Path, log: Log, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main
    from gateway.operations.lock import DirectoryLock

    log.write([make_draft(0)])
    log.close()
    assert signer.path is not None
    argv = ["key", "rotate", "--db", str(log.path), "--key", str(signer.path)]
    with DirectoryLock(log.path.parent, instance="edge-test"):
        assert main([*argv, "--new-key", str(tmp_path / "new.key")]) == 2
    assert "another Einblick gateway is running" in capsys.readouterr().err
    assert not (tmp_path / "new.key").exists()  # nothing was done
    assert main([*argv, "--new-key", str(tmp_path / "new.key")]) == 0
