"""``einblick verify | export | key`` through the CLI's ``main``, with every path taken from a
real installation's einblick.yaml (tests/log/test_cli.py checks the handlers with explicit
paths): the configured log verifies, a changed byte is named with exit code 1, the exported
bundle verifies offline with the public key alone, and a missing file is a diagnosis."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Config, load_config
from gateway.log.keys import Signer
from gateway.operations.scaffold import InitOptions, init_directory
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, Config]:
    path = init_directory(InitOptions(directory=tmp_path / "edge"))
    config = load_config(path)
    log = Log(config.database_path, Signer.load(config.signing_key_path), config.instance)
    log.write([make_draft(i) for i in range(6)])
    log.close()
    return path, config


def test_the_configured_log_verifies_and_a_changed_byte_is_named(
    installed: tuple[Path, Config], capsys: pytest.CaptureFixture[str]
) -> None:
    path, config = installed
    assert main(["verify", "--config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    with sqlite3.connect(config.database_path) as conn:
        conn.execute("UPDATE entries SET at = at + 1 WHERE idx = 2")
    conn.close()
    assert main(["verify", "--config", str(path), "--customer", C]) == 1
    assert f"error: entry 2 of customer {C}" in capsys.readouterr().err


def test_an_exported_bundle_verifies_with_the_public_key_alone(
    installed: tuple[Path, Config], tmp_path: Path
) -> None:
    path, config = installed
    # Its own process: the key commands bind sys.stdout as a default argument when imported,
    # so an in-process capture does not see what they print.
    shown = subprocess.run(
        [sys.executable, "-m", "gateway", "key", "show", "--config", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    signer = Signer.load(config.signing_key_path)
    assert f"fingerprint: {signer.fingerprint}" in shown
    public = tmp_path / "log.pub"
    public.write_text(signer.public.pem(), encoding="ascii")
    bundle = tmp_path / "bakery.bundle"
    assert main(["export", "--config", str(path), "--customer", C, "--out", str(bundle)]) == 0
    assert bundle.stat().st_size > 0
    assert main(["verify", str(bundle), "--key", str(public)]) == 0
    other = tmp_path / "other.pub"
    other.write_text(Signer.generate().public.pem(), encoding="ascii")
    assert main(["verify", str(bundle), "--key", str(other)]) != 0  # fails closed


def test_a_missing_configuration_or_database_is_a_diagnosis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("einblick: ") and "nope.yaml" in err and "Traceback" not in err
    path = init_directory(InitOptions(directory=tmp_path / "edge"))
    code = main(["verify", "--config", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and "einblick.db" in err and "Traceback" not in err
