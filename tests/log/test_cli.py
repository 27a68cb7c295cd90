"""``einblick verify | export | key``: exit codes, stdout for data, diagnosis naming the entry."""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import threading
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
    assert export_command(db=log.path, customer=C, out_path=bundle) == 0
    kept = tmp_path / "b.jsonl.checkpoint"  # the checkpoint to keep, beside the bundle
    assert kept.read_text().startswith(f"gw-test/{C}\n10\n")
    args = parse(["verify", str(bundle), "--key", str(pub), "--since", str(kept)])
    assert args.func(args) == 0
    conn = sqlite3.connect(log.path)
    conn.execute("UPDATE entries SET at = at + 1 WHERE idx = 4")
    conn.commit()
    conn.close()
    err = io.StringIO()
    code = verify_command(bundle=None, db=log.path, customer=C, key=pub, out=io.StringIO(), err=err)
    assert code == 1
    assert f"error: entry 4 of customer {C}: entry bytes do not hash to the leaf" in err.getvalue()


def test_bundle_needs_a_key(tmp_path: Path) -> None:
    err = io.StringIO()
    code = verify_command(
        bundle=tmp_path / "b", db=None, customer=None, key=None, out=io.StringIO(), err=err
    )
    assert code == 3 and "needs --key" in err.getvalue()


def test_export_signs_first_and_prove_writes_a_single_entry_proof(
    log: Log, tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    log.write([make_draft(i, customer=C) for i in range(6)])
    log.write([make_draft(6 + i, customer=C) for i in range(3)], checkpoint=False)
    log.close()
    assert signer.path is not None
    pub = tmp_path / "log.pub"
    pub.write_text(signer.public.pem())
    bundle = tmp_path / "c.bundle"
    common = ["--db", str(log.path), "--key", str(signer.path)]
    assert main(["export", "--customer", C, *common, "--out", str(bundle)]) == 0
    # the unsigned tail was signed before the export: fully covered, exit 0
    assert main(["verify", str(bundle), "--key", str(pub)]) == 0
    assert "covering 9; " in capsys.readouterr().out
    proof = tmp_path / "entry-7.tlog-proof"
    assert main(["prove", "--customer", C, "--entry", "7", *common, "--out", str(proof)]) == 0
    assert proof.read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert main(["verify", str(proof), "--key", str(pub)]) == 0
    assert "entry is in the signed tree of 9 entries: OK" in capsys.readouterr().out
    text = proof.read_text().split("\n")
    text[2] = "index 6"  # the same proof claimed for another entry
    proof.write_text("\n".join(text))
    assert main(["verify", str(proof), "--key", str(pub)]) == 1
    other = tmp_path / "other.pub"
    other.write_text(Signer.generate().public.pem())
    proof.write_text("\n".join([*text[:2], "index 7", *text[3:]]))
    assert main(["verify", str(proof), "--key", str(pub)]) == 0
    assert main(["verify", str(proof), "--key", str(other)]) == 1
    assert main(["verify", str(tmp_path / "missing.bundle"), "--key", str(pub)]) == 3


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


def test_exit_codes_for_the_database_and_a_witness_policy(
    log: Log, tmp_path: Path, signer: Signer
) -> None:
    from gateway.log.note import Signer as NoteSigner
    from gateway.log.note import cosign

    log.write([make_draft(i, customer=C) for i in range(4)])
    log.write([make_draft(4, customer=C)], checkpoint=False)
    pub = tmp_path / "log.pub"
    pub.write_text(signer.public.pem())
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(bundle=None, db=log.path, customer=C, key=pub, out=out, err=err)
    assert code == 2 and "incomplete: 1 entries are not yet covered" in err.getvalue()
    assert "OK" not in out.getvalue() and "INCOMPLETE" in out.getvalue()  # never OK + a warning
    log.write([make_draft(5, customer=C)])
    assert verify_command(bundle=None, db=log.path, customer=C, key=pub, err=io.StringIO()) == 0
    # a witness policy the checkpoints do not meet: incomplete; once cosigned in the
    # witness's table, the export carries the cosignatures and meets it
    witness = NoteSigner("witness.example/w1", Signer.generate()._private, 0x04)
    bundle = tmp_path / "w.bundle"
    export_command(db=log.path, customer=C, out_path=bundle)
    policy = {"witnesses": [witness.verifier.vkey], "witnesses_required": 1}
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(
        bundle=bundle, db=None, customer=None, key=pub, out=out, err=err, **policy
    )
    assert code == 2 and "OK" not in out.getvalue(), err.getvalue()
    # The table is migration 5's (gateway/log/cosignatures.py owns it).
    for checkpoint_id, note in log.conn.execute(
        "SELECT id, note FROM checkpoints WHERE note IS NOT NULL"
    ).fetchall():
        text = note[: note.find("\n\n") + 1]
        log.conn.execute(
            "INSERT INTO cosignatures (checkpoint_id, witness, line, timestamp)"
            " VALUES (?, ?, ?, ?)",
            (checkpoint_id, witness.name, cosign(witness, text, 1_780_000_000), 1_780_000_000),
        )
    export_command(db=log.path, customer=C, out_path=bundle)
    code = verify_command(bundle=bundle, db=None, customer=None, key=pub, **policy)
    assert code == 0
    bad = {"witnesses": ["not a vkey"], "witnesses_required": 1}
    assert verify_command(bundle=bundle, db=None, customer=None, key=pub, **bad) == 3


def test_key_show_prints_the_vkey_of_a_customers_log_that_verifies_its_checkpoints(
    tmp_path: Path,
) -> None:
    import io

    from gateway.commands.log import key_show_command
    from gateway.log.keys import Signer as BoxSigner
    from gateway.log.leaf import tree_origin
    from gateway.log.note import Verifier, open_note, sign_note

    key = tmp_path / "signing.key"
    signer = BoxSigner.generate(key)
    origin = tree_origin("box-1", "baeckerei-schmidt")
    out = io.StringIO()
    assert key_show_command(key=key, origin=origin, out=out) == 0
    vkey = next(line[6:] for line in out.getvalue().splitlines() if line.startswith("vkey: "))
    note_text = sign_note(
        "box-1/baeckerei-schmidt\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        [signer.note_signer(origin)],
    )
    assert open_note(note_text, [Verifier.parse(vkey)]).verified[0].name == origin


def test_verify_reads_a_bundle_from_a_pipe_once(log: Log, tmp_path: Path, signer: Signer) -> None:
    log.write([make_draft(i) for i in range(6)])
    pub = tmp_path / "log.pub"
    pub.write_text(signer.public.pem())
    bundle = tmp_path / "b.jsonl"
    assert export_command(db=log.path, customer=C, out_path=bundle) == 0
    pipe = tmp_path / "bundle.fifo"  # what einblick verify <(cat b.jsonl) is handed
    os.mkfifo(pipe)
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []
    reader = threading.Thread(
        target=lambda: codes.append(
            verify_command(bundle=pipe, db=None, customer=None, key=pub, out=out, err=err)
        ),
        daemon=True,
    )
    reader.start()
    pipe.write_bytes(bundle.read_bytes())
    reader.join(timeout=30)
    reopened = 0
    while reader.is_alive():  # it opened the pipe again, waiting for a writer: end that
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            break
        reopened += 1
        reader.join(timeout=5)
    assert reopened == 0, "the pipe was read more than once"
    assert codes == [0], err.getvalue()
    assert "6 entries" in out.getvalue() and "OK" in out.getvalue()
