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

__all__ = ["register"]

DEFAULT_CONFIG = Path("einblick.yaml")


def _command(args: argparse.Namespace) -> int:
    # Here, not at the top: every command (the gateway's own process too) parses the same
    # command line, and only this one needs Textual (~140 modules, tens of MB).
    from tui.launch import run_tui

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
