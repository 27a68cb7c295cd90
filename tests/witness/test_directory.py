"""A witness's directory: a key only its owner reads and that is never replaced, and a
followed-logs file read again when it changes and refused, saying where, when it is wrong."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError, GatewayError
from gateway.log.note import COSIGNATURE_TYPE, Verifier
from gateway.witness.directory import WitnessDirectory, init_witness
from tests.witness.tinylog import TinyLog

NAME = "witness.example/w1"
ORIGIN = "einblick.test/box-1/baeckerei-schmidt"


def _rewrite(directory: Path, text: str) -> None:
    # The helper the process tests use: a new mtime even within the timestamp granularity.
    path = directory / "logs.yaml"
    path.write_text(text)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))


def test_init_writes_a_private_key_and_prints_the_cosigner_vkey(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    verifier = init_witness(directory, NAME)
    assert (verifier.name, verifier.sig_type) == (NAME, COSIGNATURE_TYPE)
    assert Verifier.parse(verifier.vkey) == verifier
    assert stat.S_IMODE((directory / "witness.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert (directory / "witness.name").read_text() == NAME + "\n"
    assert WitnessDirectory(directory).signer().verifier == verifier
    assert WitnessDirectory(directory).followed().trusted == {}


def test_init_never_overwrites_a_key(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    first = init_witness(directory, NAME)
    key = (directory / "witness.key").read_bytes()
    with pytest.raises(GatewayError, match="refusing to overwrite"):
        init_witness(directory, "witness.example/other")
    assert (directory / "witness.key").read_bytes() == key
    assert WitnessDirectory(directory).signer().verifier == first


def test_a_name_that_cannot_be_a_key_name_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="witness name"):
        init_witness(tmp_path / "w", "has space+plus")
    assert not (tmp_path / "w").exists()


def test_a_key_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    init_witness(tmp_path, NAME)
    os.chmod(tmp_path / "witness.key", 0o644)
    with pytest.raises(GatewayError, match="chmod 600"):
        WitnessDirectory(tmp_path).signer()


def test_a_directory_without_a_name_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="einblick witness init"):
        WitnessDirectory(tmp_path).signer()


def test_logs_yaml_is_read_again_when_it_changes(tmp_path: Path) -> None:
    init_witness(tmp_path, NAME)
    directory = WitnessDirectory(tmp_path)
    assert directory.followed().trusted == {}
    log = TinyLog(ORIGIN)
    _rewrite(tmp_path, yaml.safe_dump({"logs": [{"origin": ORIGIN, "keys": [log.verifier.vkey]}]}))
    assert directory.followed().trusted == {ORIGIN: (log.verifier,)}
    _rewrite(tmp_path, "logs: []\n")
    assert directory.followed().trusted == {}


def test_logs_yaml_unchanged_is_not_read_again(tmp_path: Path) -> None:
    init_witness(tmp_path, NAME)
    directory = WitnessDirectory(tmp_path)
    before = directory.followed()
    path = tmp_path / "logs.yaml"
    info = path.stat()
    path.write_text("logs: [broken")  # same mtime: the cached logs stand
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert directory.followed() is before


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("logs: [", "not a YAML file"),
        ("logs:\n  - origin: a\n    keys: []\n", "logs.0.keys"),
        ("logs: []\ncolour: red\n", "colour: Extra inputs"),
        ("logs:\n  - origin: a\n    keys: [not-a-vkey]\n", "logs.0.keys"),
    ],
)
def test_a_broken_logs_yaml_is_refused_saying_where(tmp_path: Path, text: str, says: str) -> None:
    init_witness(tmp_path, NAME)
    _rewrite(tmp_path, text)
    with pytest.raises(ConfigError, match=says) as caught:
        WitnessDirectory(tmp_path).followed()
    assert "logs.yaml" in str(caught.value)


def test_a_witness_key_listed_as_a_log_key_is_refused(tmp_path: Path) -> None:
    witness = init_witness(tmp_path, NAME)
    _rewrite(tmp_path, yaml.safe_dump({"logs": [{"origin": ORIGIN, "keys": [witness.vkey]}]}))
    with pytest.raises(ConfigError, match="a witness key"):
        WitnessDirectory(tmp_path).followed()


def test_an_origin_listed_twice_is_refused(tmp_path: Path) -> None:
    init_witness(tmp_path, NAME)
    vkey = TinyLog(ORIGIN).verifier.vkey
    entry = {"origin": ORIGIN, "keys": [vkey]}
    _rewrite(tmp_path, yaml.safe_dump({"logs": [entry, entry]}))
    with pytest.raises(ConfigError, match="listed twice"):
        WitnessDirectory(tmp_path).followed()


def test_a_missing_or_huge_logs_yaml_is_refused(tmp_path: Path) -> None:
    init_witness(tmp_path, NAME)
    (tmp_path / "logs.yaml").write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="< 1 MiB"):
        WitnessDirectory(tmp_path).followed()
    (tmp_path / "logs.yaml").unlink()
    with pytest.raises(ConfigError, match="cannot read the followed logs"):
        WitnessDirectory(tmp_path).followed()


def test_init_keeps_a_logs_yaml_written_before_it(tmp_path: Path) -> None:
    vkey = TinyLog(ORIGIN).verifier.vkey
    text = yaml.safe_dump({"logs": [{"origin": ORIGIN, "keys": [vkey]}]})
    (tmp_path / "logs.yaml").write_text(text)
    init_witness(tmp_path, NAME)
    assert (tmp_path / "logs.yaml").read_text() == text
