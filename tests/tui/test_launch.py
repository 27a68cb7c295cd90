"""Opening the TUI: the data source from a configuration and/or a database path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from tests.gateway.edge import edge_config
from tests.gateway.test_end_to_end import BAKERY
from tui.launch import make_source, run_tui
from tui.source import SourceError


def test_a_database_alone_opens_just_the_log(tmp_path: Path) -> None:
    source = make_source(None, tmp_path / "einblick.db", "berg-partner")
    assert source.database == tmp_path / "einblick.db"
    assert source.customer == "berg-partner"
    assert source.control_socket is None and source.policies_dir is None


def test_a_configuration_gives_the_socket_policies_and_recipients_names(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    source = make_source(config.source, None, None)
    assert source.database == config.database_path
    assert source.control_socket == config.control_socket
    assert source.policies_dir == config.policies_path
    assert source.names.recipients["oven-maker"] == "Ofenbau Müller GmbH – Wartungscloud"
    # --db beside a configuration: the log at that path, the rest from the configuration.
    other = make_source(config.source, tmp_path / "copy.db", None)
    assert other.database == tmp_path / "copy.db"
    assert other.control_socket == config.control_socket


def test_a_broken_configuration_is_said_with_its_file(tmp_path: Path) -> None:
    broken = tmp_path / "einblick.yaml"
    broken.write_text("instance: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"einblick\.yaml"):
        make_source(broken, None, None)


def test_no_database_yet_is_a_diagnosis(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    with pytest.raises(SourceError, match=r"no log database at .*has the gateway run yet"):
        run_tui(config.source, None, None, "de")
