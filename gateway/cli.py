"""The ``einblick`` command.

stdout carries data (``einblick export … | jq`` works), stderr carries logs and diagnostics.
A user mistake prints one line saying what and where, and exits 2; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version

from gateway.commands import (
    customer,
    device,
    gateway_cmds,
    handover,
    operations,
    policy,
    rights,
    simulate,
    tui,
    witness,
)
from gateway.commands import log as log_cmds
from gateway.operations.filemodes import UMASK
from policies.errors import EinblickError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="einblick",
        description="Einblick: an IoT transparency gateway. Nothing leaves the box unless the "
        "customer's policy allows it, and every decision is explained and signed.",
    )
    parser.add_argument("--version", action="version", version=f"einblick {version('einblick')}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (
        gateway_cmds,
        device,
        policy,
        log_cmds,
        rights,
        operations,
        handover,
        simulate,
        tui,
        customer,
        witness,
    ):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["bench"] and "--instances" in args_list:  # 1 … N instances, one run
        from gateway.bench.instances import main as instances_main

        return instances_main(args_list[1:])
    if args_list[:1] == ["bench"]:
        # The benchmark has its own options (argparse cannot pass "--help" on through REMAINDER).
        from gateway.bench.pipeline import main as bench_main

        return bench_main(args_list[1:])
    # Everything Einblick writes (configuration, keys, log, broker files, exports, backups) is
    # its user's alone, whatever the umask of the shell or unit (gateway/operations/filemodes.py).
    os.umask(UMASK)
    parser = build_parser()
    args = parser.parse_args(args_list)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    code = 2
    try:
        try:
            code = args.func(args)
        except* EinblickError as group:
            # ``except*``, not ``except``: an error raised inside the gateway's TaskGroup (a
            # component that gave up, a recipient's unusable TLS file) arrives as an
            # ExceptionGroup, nested once per TaskGroup it passed. Each one is a diagnosis for
            # the installer, printed on its own line; anything else in the group is a bug and
            # keeps its traceback.
            for exc in _leaves(group):
                print(f"einblick: {exc}", file=sys.stderr)
            code = 2
    except KeyboardInterrupt:
        return 130
    return code


def _leaves(group: BaseExceptionGroup[EinblickError]) -> list[EinblickError]:
    """The errors of a (possibly nested) exception group, in the order they were raised."""
    found: list[EinblickError] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


if __name__ == "__main__":
    sys.exit(main())
