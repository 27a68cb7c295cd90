"""``einblick device`` through the CLI's ``main`` on a real installation (no gateway running):
the integrator's details printed once, the registry written, and every registration that could
let one device hurt another refused with a diagnosis, not a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.devices.registry import Registry
from gateway.operations.scaffold import InitOptions, init_directory


@pytest.fixture
def config_path(tmp_path: Path) -> str:
    return str(init_directory(InitOptions(directory=tmp_path / "edge")))


def _device(config_path: str, *argv: str) -> int:
    return main(["device", *argv, "--config", config_path])


def _password(out: str) -> str:
    found = re.search(r"^  password:  (\S+)$", out, re.MULTILINE)
    assert found is not None, out
    return found.group(1)


def test_add_list_rotate_remove(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    add = ["add", "--customer", "baeckerei-schmidt", "--name", "Sensor 1"]
    assert _device(config_path, *add) == 0
    out, err = capsys.readouterr()
    assert "username:  baeckerei-schmidt.sensor-1" in out
    assert "publish:   devices/baeckerei-schmidt/sensor-1/telemetry" in out
    first = _password(out)
    assert "the gateway is not running; it picks the change up when it starts" in err
    registry = Registry(load_config(config_path).data_path / "devices.json")
    entry = registry.get("baeckerei-schmidt", "sensor-1")
    assert entry.password_hash is not None and first not in entry.password_hash
    assert _device(config_path, "list") == 0
    assert capsys.readouterr().out.startswith("baeckerei-schmidt/sensor-1\tSensor 1\tsensor\t")
    assert (
        _device(config_path, "rotate", "--customer", "baeckerei-schmidt", "--id", "sensor-1") == 0
    )
    assert _password(capsys.readouterr().out) != first
    assert (
        _device(config_path, "remove", "--customer", "baeckerei-schmidt", "--id", "sensor-1") == 0
    )
    assert "removed baeckerei-schmidt/sensor-1" in capsys.readouterr().err
    assert _device(config_path, "list") == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["--customer", "baeckerei-schmit", "--name", "X"],
            "unknown customer 'baeckerei-schmit' (did you mean 'baeckerei-schmidt'?)",
        ),
        (
            ["--customer", "baeckerei-schmidt", "--name", "Ofen", "--id", "oven-1",
             "--topic", "bakery/oven-1/x"],
            "is declared in its policy with topics",
        ),
        (
            ["--customer", "baeckerei-schmidt", "--name", "Y", "--topic", "bakery/oven-1/#"],
            "lies outside customer 'baeckerei-schmidt''s namespace devices/baeckerei-schmidt/",
        ),
        (
            ["--customer", "baeckerei-schmidt", "--name", "Z", "--cert"],
            "--cert needs the TLS listener with client certificates",
        ),
    ],
)  # fmt: skip
def test_what_could_hurt_another_device_is_refused(
    config_path: str, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert _device(config_path, "add", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("einblick: ") and words in err and "Traceback" not in err
    assert not (load_config(config_path).data_path / "devices.json").exists()


def test_a_second_device_with_the_same_name_is_refused(
    config_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["add", "--customer", "baeckerei-schmidt", "--name", "Sensor 1"]
    assert _device(config_path, *add) == 0
    assert _device(config_path, *add) == 2
    assert "already has a device with id 'sensor-1'" in capsys.readouterr().err
    assert _device(config_path, *add[:-1], "sensor 1", "--id", "other") == 2
    assert "already has a device named 'Sensor 1'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "taking",
    [
        "devices/baeckerei-schmidt/sensor-1/telemetry",  # refused when the gateway loads it
        "+/+/+/telemetry",  # a first-level wildcard never takes a topic of another namespace
    ],
)
def test_a_topic_another_customers_policy_cannot_have_does_not_block_a_registration(
    config_path: str, capsys: pytest.CaptureFixture[str], taking: str
) -> None:
    """``device add`` counts a policy's topics as the gateway does (before, it counted these
    two, and refused a device the running gateway would have admitted)."""
    policies = load_config(config_path).policies_path
    bakery = (policies / "bakery.yaml").read_text(encoding="utf-8")
    other = bakery.replace("customer: baeckerei-schmidt", "customer: evil-corp")
    other = other.replace('"bakery/oven-1/telemetry"', f'"{taking}"').replace('"bakery/', '"evil/')
    (policies / "evil.yaml").write_text(other, encoding="utf-8")
    assert _device(config_path, "add", "--customer", "baeckerei-schmidt", "--name", "Sensor 1") == 0
    assert "username:  baeckerei-schmidt.sensor-1" in capsys.readouterr().out
