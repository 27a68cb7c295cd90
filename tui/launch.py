"""Opening the TUI on a configuration and/or a log database: the data source and the app.

Shared by ``einblick tui`` (gateway/commands/tui.py) and the demo (gateway/operations/demo.py), so
the operator's tools never import a command module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gateway.config import load_config
from tui.app import EinblickApp
from tui.local import LocalSource
from tui.model import Names
from tui.source import SourceError

__all__ = ["make_source", "run_tui"]


def make_source(
    config_path: Path | None, db_path: Path | None, customer: str | None
) -> LocalSource:
    """The local data source for a configuration and/or a database path."""
    config = None
    if config_path is not None and (config_path.exists() or db_path is None):
        config = load_config(config_path)  # ConfigError (an EinblickError) says what is wrong
    if config is None and db_path is None:
        raise SourceError("give --config einblick.yaml or --db PATH")
    database = db_path or (config.database_path if config is not None else None)
    assert database is not None
    return LocalSource(
        database,
        customer=customer,
        control_socket=None if config is None else config.control_socket,
        policies_dir=None if config is None else config.policies_path,
        names=Names(recipients={} if config is None else config.recipient_names()),
    )


def run_tui(
    config_path: Path | str | None,
    db_path: Path | str | None,
    customer: str | None,
    lang: Literal["de", "en"] | None,
) -> int:
    """Run the TUI in the foreground until the user quits; returns the exit code."""
    source = make_source(
        None if config_path is None else Path(config_path),
        None if db_path is None else Path(db_path),
        customer,
    )
    if not source.database.exists():
        raise SourceError(f"no log database at {source.database} (has the gateway run yet?)")
    app = EinblickApp(source, lang=lang)
    code = app.run()
    return 0 if code is None else int(code)
