"""Reading einblick.yaml: every problem is a ConfigError naming file, line and key, and a file
without an instance keeps the name its log was written under."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.loading import MAX_CONFIG_BYTES, load_config, stored_origin
from gateway.errors import ConfigError
from gateway.log.keys import Signer
from tests.log.conftest import Log, make_draft

GOOD = "einblick_config: 1\ninstance: edge-07\nbroker:\n  port: 1884\n"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "einblick.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_a_good_file_loads_with_its_own_path_as_source(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.source == (tmp_path / "einblick.yaml").resolve()
    assert (config.instance, config.broker.port) == ("edge-07", 1884)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"einblick_config: 1\n#" + b"x" * MAX_CONFIG_BYTES, "a configuration is < 1 MiB"),
        (b"einblick_config: 1\ninstance: \xff\n", "not UTF-8 text (byte 29)"),
        (b"- einblick_config: 1\n", "expected a mapping with 'einblick_config: 1'"),
        (b"", "expected a mapping"),
        (b"einblick_config: 1\nsource: /etc/passwd\n", "'source' is set by Einblick"),
    ],
)
def test_what_is_not_a_configuration_is_refused_by_name(
    tmp_path: Path, content: bytes, words: str
) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, content))


def test_an_unknown_key_points_at_the_key_and_a_bad_value_at_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  port: 1884", "  port: 1884\n  lisen: 0.0.0.0"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:5:3: broker.lisen: unknown key"), caught.value
    path = write(tmp_path, GOOD.replace("1884", "[1884]"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:4:9: broker.port:"), caught.value


def test_a_file_without_an_instance_takes_the_one_its_log_carries(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    database = tmp_path / "data" / "einblick.db"
    assert stored_origin(database) is None  # no log yet
    log = Log(database, Signer.generate(tmp_path / "log.key"), origin="bakery-box-3f9a1c")
    log.write([make_draft(0)])
    log.close()
    assert stored_origin(database) == "bakery-box-3f9a1c"
    config = load_config(write(tmp_path, "einblick_config: 1\n"))
    assert config.instance == "bakery-box-3f9a1c"
    # A name in the file wins: the gateway's own open then says the two differ.
    assert load_config(write(tmp_path, GOOD)).instance == "edge-07"


def test_a_database_that_is_not_a_log_gives_no_origin(tmp_path: Path) -> None:
    database = tmp_path / "einblick.db"
    database.write_bytes(b"not sqlite at all" * 100)
    assert stored_origin(database) is None
