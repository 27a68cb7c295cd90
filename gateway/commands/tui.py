"""``einblick tui``: the live explanation log in the terminal.

    einblick tui [--config einblick.yaml] [--db PATH] [--customer C] [--lang de|en]

With a configuration, the database, the control socket (status, policies, withdrawal), the
policy files (device names; the read-only "who gets what" when the gateway is not running) and
the recipients' display names come from it; ``--db`` alone opens just the log. ``--customer``
shows only that customer's entries and grants, enforced in the data source.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Literal

from gateway.config import load_config
from tui.app import EinblickApp
from tui.local import LocalSource
from tui.model import Names
from tui.source import SourceError

__all__ = ["register", "run_tui"]

DEFAULT_CONFIG = Path("einblick.yaml")


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


def _command(args: argparse.Namespace) -> int:
    config: Path | None = args.config
    if config is None and (args.db is None or DEFAULT_CONFIG.exists()):
        config = Path(os.environ.get("EINBLICK_CONFIG", str(DEFAULT_CONFIG)))
    return run_tui(config, args.db, args.customer, args.lang)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tui",
        help="watch what your devices share, with whom and why (live, de/en)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="the installer's configuration (default: $EINBLICK_CONFIG or ./einblick.yaml)",
    )
    parser.add_argument("--db", type=Path, default=None, help="open this log database read-only")
    parser.add_argument("--customer", default=None, help="show only this customer's entries")
    parser.add_argument(
        "--lang",
        choices=("de", "en"),
        default=None,
        help="language (default: the customer's, else de)",
    )
    parser.set_defaults(func=_command)
