"""``--instances``: the commands that present one history per customer read every instance.

    einblick export --customer werk-a --instances hall-a/einblick.yaml hall-b/einblick.yaml
    einblick status --instances hall-*/einblick.yaml

Export and report run against the one instance whose log holds the customer's history
(gateway/operations/cluster.py says which, or why none can); status asks every instance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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


def use_owner(args: argparse.Namespace) -> None:
    """With ``--instances``, point ``--config`` at the instance that holds ``--customer``."""
    paths: list[Path] | None = getattr(args, "instances", None)
    if not paths:
        return
    if getattr(args, "db", None) is not None:
        raise SystemExit("einblick: --db and --instances exclude each other: give one")
    args.config = holder(load_instances(paths), args.customer).source
