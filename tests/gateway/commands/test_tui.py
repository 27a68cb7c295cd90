"""``einblick tui``: argument parsing and the diagnosis when there is nothing to open."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gateway.commands.tui import register
from policies.errors import EinblickError
from tui.launch import make_source
from tui.source import SourceError


def test_register_parses_the_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["tui", "--db", str(tmp_path / "x.db"), "--customer", "berg-partner", "--lang", "en"]
    )
    assert args.db == tmp_path / "x.db" and args.customer == "berg-partner" and args.lang == "en"
    assert callable(args.func)


def test_missing_database_is_a_diagnosis_not_a_traceback(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["tui", "--db", str(tmp_path / "missing.db")])
    with pytest.raises(SourceError, match="no log database"):
        args.func(args)


def test_nothing_to_open() -> None:
    with pytest.raises(SourceError, match="give --config"):
        make_source(None, None, None)


def test_without_options_the_configuration_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --config and no --db: $EINBLICK_CONFIG names the configuration, and one that does
    not load is a diagnosis naming that file, not the working directory's."""
    monkeypatch.chdir(tmp_path)
    wanted = tmp_path / "elsewhere" / "einblick.yaml"
    monkeypatch.setenv("EINBLICK_CONFIG", str(wanted))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["tui"])
    with pytest.raises(EinblickError, match=str(wanted)):
        args.func(args)
