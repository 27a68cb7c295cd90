"""The ``einblick`` command itself (gateway/cli.py): ``--version``; no command prints the help
and exits 2; a diagnosis is one line on stderr and exit 2 (out of the gateway's nested task
groups too: tests/gateway/test_cli_errors.py); ``-v`` turns on more detail; files it writes
are its user's alone."""

from __future__ import annotations

import logging
import os
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway.cli import main


def test_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"einblick {version('einblick')}\n"
    assert main([]) == 2
    assert "usage: einblick" in capsys.readouterr().err


def test_a_configuration_that_does_not_load_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "einblick.yaml"
    config.write_text("einblick_config: 1\nrecipients: [\n", encoding="utf-8")
    assert main(["status", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("einblick: ") and str(config) in line


def test_verbose_means_more_detail_and_files_are_the_users_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    mask = os.umask(0o022)
    try:
        root.handlers.clear()
        assert main(["-vv", "init", str(tmp_path / "edge"), "--port", "18830"]) == 0
        assert root.level == logging.DEBUG
        assert os.umask(0o022) == 0o077  # what main set for everything it writes
        config = tmp_path / "edge" / "einblick.yaml"
        assert config.stat().st_mode & 0o077 == 0
    finally:
        os.umask(mask)
        root.setLevel(before[0])
        root.handlers[:] = before[1]
    capsys.readouterr()
