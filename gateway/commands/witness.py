"""``einblick witness init|serve``: a witness for other boxes' logs (c2sp.org/tlog-witness).

A witness runs on a machine the box's operator does not control (the customer's, an
auditor's, an industry association's). It cosigns a box's checkpoints only when each new one
extends the last it cosigned, so a history rewritten on the box cannot be cosigned again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.commands.gateway_cmds import (
    SubParsers,
    add_config_option,
    config_from,
    run_until_signalled,
)
from gateway.errors import ConfigError

__all__ = ["register"]


def register(sub: SubParsers) -> None:
    witness = sub.add_parser(
        "witness", help="run a witness that countersigns other boxes' checkpoints"
    )
    commands = witness.add_subparsers(dest="witness_command", metavar="WITNESS_COMMAND")

    init = commands.add_parser(
        "init", help="make a witness directory with a new cosigner key; prints its public key"
    )
    init.add_argument("--dir", type=Path, required=True, help="a new or empty directory")
    init.add_argument(
        "--name", required=True, help="the witness's name, a schema-less URL (witness.example/w1)"
    )
    init.set_defaults(func=_init)

    serve = commands.add_parser("serve", help="serve add-checkpoint over HTTP(S)")
    serve.add_argument("--dir", type=Path, required=True, help="made by 'einblick witness init'")
    serve.add_argument(
        "--listen", default="127.0.0.1:7380", help="host:port to listen on (port 0: any free one)"
    )
    serve.add_argument(
        "--logs", type=Path, default=None, help="the followed logs (default: DIR/logs.yaml)"
    )
    serve.add_argument("--prefix", default="", help="URL path before /add-checkpoint")
    serve.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this cert")
    serve.add_argument("--tls-key", type=Path, default=None, help="the certificate's key")
    serve.set_defaults(func=_serve)
    logs = commands.add_parser(
        "logs",
        help="print this box's logs as a witness's logs.yaml (origin and key of each)",
    )
    add_config_option(logs)
    logs.add_argument(
        "--customer",
        action="append",
        default=[],
        help="a customer to include even before its first entry (repeatable)",
    )
    logs.set_defaults(func=_logs)
    witness.set_defaults(func=lambda args: _usage(witness))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _init(args: argparse.Namespace) -> int:
    from gateway.witness.directory import init_witness

    verifier = init_witness(args.dir, args.name)
    print(verifier.vkey)
    print(
        f"witness {args.name} made in {args.dir}. Give the line above to the box's installer "
        "(einblick.yaml, witnesses:) and to customers (einblick verify --witness). Add the logs "
        f"to follow to {args.dir / 'logs.yaml'}, then: einblick witness serve --dir {args.dir}",
        file=sys.stderr,
    )
    return 0


def _logs(args: argparse.Namespace) -> int:
    """The witness operator's logs.yaml for this box: every log's origin with the box key's
    vkey under that name. Only public keys are printed."""
    import yaml

    from gateway.log.keys import Signer
    from gateway.log.leaf import tree_origin
    from gateway.log.note import ED25519_TYPE, Verifier
    from gateway.log.reader import Reader

    config = config_from(args)
    chains = set(args.customer)
    if config.database_path.is_file():
        reader = Reader.open(config.database_path)
        try:
            chains |= set(reader.chain_names().values())
        finally:
            reader.close()
    public = Signer.load(config.signing_key_path).public.raw
    logs = []
    for chain in sorted(chains):
        origin = tree_origin(config.instance, chain)
        logs.append({"origin": origin, "keys": [Verifier(origin, ED25519_TYPE, public).vkey]})
    print(
        "# The logs of Einblick box "
        f"{config.instance}, for the witness's logs.yaml. After 'einblick key rotate', add the\n"
        "# new key's line beside the old one (the log's rotation record is signed by both)."
    )
    print(yaml.safe_dump({"logs": logs}, sort_keys=False, width=1000), end="")
    return 0


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("--listen", f"expected host:port, found {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _serve(args: argparse.Namespace) -> int:
    from gateway.witness.directory import WitnessDirectory
    from gateway.witness.server import WitnessServer, tls_context

    host, port = _listen(args.listen)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert", "HTTPS needs both --tls-cert and --tls-key")
    context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = WitnessServer(
        WitnessDirectory(args.dir, args.logs), prefix=args.prefix, ssl_context=context
    )

    async def serve() -> None:
        await server.start(host, port)
        try:
            # Said on stderr once the socket is bound: scripts and tests wait for this line.
            print(
                f"witness {server.signer.name} listening on "
                f"{server.url.format(host=host)}/add-checkpoint",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.Event().wait()
        finally:
            await server.close()

    run_until_signalled(serve())
    return 0
