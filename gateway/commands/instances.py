"""``--instances``: the commands that present one history per customer read every instance.

    einblick export --customer werk-a --instances hall-a/einblick.yaml hall-b/einblick.yaml
    einblick status --instances hall-*/einblick.yaml

Export and report run against the one instance whose log holds the customer's history
(gateway/operations/cluster.py says which, or why none can); status asks every instance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.config import load_config
from gateway.errors import LogError
from gateway.log.moves import read_moves
from gateway.operations.cluster import holder, load_instances

__all__ = ["add_instances_option", "use_owner"]


def add_instances_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instances",
        type=Path,
        nargs="+",
        metavar="CONFIG",
        help="every instance's configuration (a cluster): read the one that owns the customer",
    )


def use_owner(args: argparse.Namespace, command: str) -> None:
    """With ``--instances``, point ``--config`` at the instance that holds ``--customer``.
    Without it, refuse a customer this instance handed over (``command`` is the refused one)."""
    paths: list[Path] | None = getattr(args, "instances", None)
    if not paths:
        _refuse_moved_away(args, command)
        return
    if getattr(args, "db", None) is not None:
        raise SystemExit("einblick: --db and --instances exclude each other: give one")
    args.config = holder(load_instances(paths), args.customer).source


def _refuse_moved_away(args: argparse.Namespace, command: str) -> None:
    """After ``einblick handover`` the old instance's tree of the customer stops at the move:
    a bundle or report from it alone would hand out a history that looks whole and is not (the
    new instance holds all of it, the old entries included)."""
    db: Path | None = getattr(args, "db", None)
    if db is None:
        config_path: Path | None = getattr(args, "config", None)
        if config_path is None or not config_path.exists():
            return
        db = load_config(config_path).database_path
    went = read_moves(Path(db), "").handed_out.get(args.customer)
    if went is None:
        return
    raise LogError(
        f"customer {args.customer!r} was handed over to instance {went!r}: the log in {db} "
        f"holds its history only up to the move, and {went!r} holds all of it. Run it there: "
        f"einblick {command} --customer {args.customer} --config <{went}'s einblick.yaml>, or "
        f"give every instance: einblick {command} --customer {args.customer} --instances "
        "<each instance's einblick.yaml>"
    )
