"""The installer's configuration: every mistake names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError

GOOD = """einblick_config: 1
instance: edge-07
data_dir: data
broker:
  port: 1884
recipients:
  - name: oven-maker
    display_name: Ofenbau Müller
    url: mqtts://maintenance.example.com:8883
    password_file: secrets/oven-maker.password
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "einblick.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.instance == "edge-07"
    assert config.database_path == tmp_path / "data" / "einblick.db"
    assert config.control_socket == tmp_path / "data" / "control.sock"
    recipient = config.recipient("oven-maker")
    assert (recipient.host, recipient.port, recipient.uses_tls) == (
        "maintenance.example.com",
        8883,
        True,
    )
    assert not recipient.tls.insecure_skip_verify  # certificates are verified unless switched off
    assert config.metrics.enabled is False


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        (("  port: 1884", "  prot: 1884"), ":5:3: broker.prot:", "unknown key"),
        (("  port: 1884", "  port: many"), ":5:9: broker.port:", "integer"),
        (
            ("url: mqtts://maintenance.example.com:8883", "url: http://x"),
            ":9:10: recipients.0.url:",
            "mqtt://host:port",
        ),
        (
            ("  - name: oven-maker", "  - name: Oven Maker"),
            ":7:11: recipients.0.name:",
            "lower-case",
        ),
        (("einblick_config: 1", "einblick_config: 2"), ":1:18: einblick_config:", "1"),
        (("instance: edge-07\n", ""), None, None),
    ],
)
def test_each_mistake_names_file_line_and_key(
    tmp_path: Path, edit: tuple[str, str], where: str | None, words: str | None
) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    if where is None:
        load_config(path)  # a missing optional key is fine
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path) + where), message
    assert words is not None and words in message


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("broker:\n  port: 1884", "broker:\n  port: [1884"))
    with pytest.raises(ConfigError, match=r"einblick\.yaml:\d+:\d+: invalid YAML"):
        load_config(path)


def test_a_recipient_defined_twice_is_refused(tmp_path: Path) -> None:
    doubled = GOOD + "  - name: oven-maker\n    display_name: again\n    url: mqtt://x:1883\n"
    with pytest.raises(ConfigError, match="recipient 'oven-maker' is defined twice"):
        load_config(write(tmp_path, doubled))


def test_missing_required_key_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="einblick_config: required key is missing"):
        load_config(write(tmp_path, "instance: edge-01\n"))
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no recipient named 'cloud'"):
        load_config(write(tmp_path, GOOD)).recipient("cloud")


def test_a_control_character_is_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "einblick_config: 1\n\x1f\n"))
