"""``einblick init`` (gateway/operations/scaffold.py) on a real directory: a configuration that
loads with the options given, the example policies, an owner-only data directory and signing
key, a unique name per box, and no overwriting without --force (which keeps key, log and name)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.log.keys import Signer
from gateway.operations.scaffold import InitOptions, init_directory, initialise, new_instance_name
from policies.examples import EXAMPLES


def test_a_new_directory_loads_with_the_options_given(tmp_path: Path) -> None:
    path = init_directory(
        InitOptions(
            directory=tmp_path / "edge",
            instance="bakery-box-1",
            broker_port=18830,
            tls_port=18883,
            upstream_url="mqtts://cloud.example.com:8883",
        )
    )
    config = load_config(path)
    assert (config.instance, config.broker.port, config.broker.tls_port) == (
        "bakery-box-1",
        18830,
        18883,
    )
    assert {r.url for r in config.recipients} == {"mqtts://cloud.example.com:8883"}
    assert sorted(p.stem for p in config.policies_path.glob("*.yaml")) == sorted(EXAMPLES)
    data = config.data_path
    assert data.stat().st_mode & 0o777 == 0o700
    assert config.signing_key_path.stat().st_mode & 0o777 == 0o600
    assert Signer.load(config.signing_key_path).public.pem() == (
        data / "keys" / "signing.pub"
    ).read_text(encoding="ascii")


def test_nothing_is_overwritten_without_force_and_force_keeps_key_log_and_name(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "edge"
    path = init_directory(InitOptions(directory=directory))
    config = load_config(path)
    fingerprint = Signer.load(config.signing_key_path).fingerprint
    config.database_path.write_bytes(b"the log")
    with pytest.raises(GatewayError, match="exists already; pass --force"):
        init_directory(InitOptions(directory=directory, broker_port=1999))
    assert load_config(path).broker.port == 1883
    result = initialise(InitOptions(directory=directory, broker_port=1999, force=True))
    again = load_config(path)
    assert again.instance == config.instance and again.broker.port == 1999
    assert Signer.load(again.signing_key_path).fingerprint == fingerprint
    assert config.database_path.read_bytes() == b"the log"
    assert any("broker.port" in line and "1883 -> 1999" in line for line in result.renewed)
    assert any(fingerprint in line for line in result.kept)
    assert (directory / "einblick.yaml.bak").stat().st_mode & 0o777 == 0o600


def test_every_box_gets_a_name_of_its_own() -> None:
    names = {new_instance_name() for _ in range(20)}
    assert len(names) == 20
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*-[0-9a-f]{6}", n) for n in names), names
