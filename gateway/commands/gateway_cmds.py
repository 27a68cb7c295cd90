"""Commands that run or ask the gateway: init, run, status, consent, receipt, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TypeAlias

import orjson

from gateway.commands.instances import add_instances_option
from gateway.config import Config, load_config
from gateway.log.keys import load_public_key
from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, GatewayNotRunning, ask, request
from gateway.operations.scaffold import InitOptions, initialise
from gateway.operations.status_text import render_status
from gateway.rights.receipts import verify_receipt

__all__ = ["add_config_option", "config_from", "register", "run_until_signalled"]

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("EINBLICK_CONFIG", "einblick.yaml")),
        help="the installer's configuration (default: $EINBLICK_CONFIG or ./einblick.yaml)",
    )


def config_from(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def register(sub: SubParsers) -> None:
    init = sub.add_parser("init", help="write a working configuration, keys and example policies")
    init.add_argument("directory", type=Path)
    init.add_argument(
        "--instance",
        default=None,
        help="this box's name in the log and at the recipients' brokers "
        "(default: hostname plus a random part, unique per box)",
    )
    init.add_argument("--port", type=int, default=1883, help="device-side broker port")
    init.add_argument("--listen", default="127.0.0.1", help="address devices connect to")
    init.add_argument(
        "--tls-port", type=int, default=8883, help="TLS listener port (0: no TLS listener)"
    )
    init.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="a name or address devices use for this box (in the TLS certificate); repeatable",
    )
    init.add_argument(
        "--upstream-url", default="mqtt://127.0.0.1:1884", help="the example recipients' broker"
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="rewrite an existing configuration (saved as einblick.yaml.bak); renews the "
        "listener certificate for new --hostname/--listen; keeps keys, the log, the CA, "
        "devices and policies",
    )
    init.set_defaults(func=_init)

    run = sub.add_parser("run", help="run the gateway in the foreground (systemd runs this)")
    add_config_option(run)
    run.set_defaults(func=_run)

    reload = sub.add_parser(
        "reload",
        help="apply a changed einblick.yaml to the running gateway and say what needs a restart",
    )
    add_config_option(reload)
    reload.set_defaults(func=_reload)

    status = sub.add_parser(
        "status", help="broker and upstream connections, outbox, checkpoints, policies"
    )
    add_config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add_instances_option(status)
    status.set_defaults(func=_status)

    consent = sub.add_parser(
        "consent",
        help="a customer's rights over a grant: withdraw/give consent, object, restrict, lift",
    )
    consent_sub = consent.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("withdraw", "withdraw a consent (GDPR Art. 7(3)): the next message is withheld"),
        ("give", "give (or restore) a consent"),
        ("object", "object to a grant on legitimate interests or a public task (GDPR Art. 21)"),
        ("restrict", "restrict a grant on any legal basis (GDPR Art. 18)"),
        ("lift", "lift an objection or a restriction in force"),
    ):
        p = consent_sub.add_parser(action, help=text)
        add_config_option(p)
        p.add_argument("--customer", required=True)
        p.add_argument("--grant", required=True)
        p.add_argument(
            "--by", required=True, help="the person taking this action (in the log and receipt)"
        )
        p.add_argument(
            "--receipt", type=Path, help="write the signed receipt to this file (default: stdout)"
        )
        p.add_argument(
            "--record",
            type=Path,
            help="also write the event as DPV JSON-LD (ISO/IEC TS 27560 consent record)",
        )
        p.set_defaults(func=_consent, action=action)

    receipt = sub.add_parser("receipt", help="verify a consent receipt offline")
    receipt_sub = receipt.add_subparsers(dest="receipt_action", metavar="ACTION", required=True)
    verify = receipt_sub.add_parser(
        "verify", help="check a receipt's signature with the public key"
    )
    verify.add_argument("file", type=Path)
    verify.add_argument("--key", required=True, help="the gateway's public key (PEM file)")
    verify.set_defaults(func=_receipt_verify)

    bench = sub.add_parser(
        "bench",
        help="measure the gateway against Mosquitto's bridge and a plain paho forwarder",
        add_help=False,
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)

    demo = sub.add_parser(
        "demo", help="broker, cloud stand-in, simulated devices, gateway and TUI on loopback"
    )
    demo.add_argument(
        "--dir", type=Path, default=Path("demo-data"), help="where the demo keeps its files"
    )
    demo.add_argument(
        "--no-tui", action="store_true", help="print a status line instead of the TUI"
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--lang", choices=("de", "en"), default=None)
    demo.set_defaults(func=_demo)


def _init(args: argparse.Namespace) -> int:
    result = initialise(
        InitOptions(
            directory=args.directory,
            instance=args.instance,
            broker_port=args.port,
            listen=args.listen,
            tls_port=args.tls_port or None,
            hostnames=tuple(args.hostname),
            upstream_url=args.upstream_url,
            force=args.force,
        )
    )
    path = result.config_path
    print(f"wrote {path}", file=sys.stderr)
    for line in result.renewed:
        print(f"  renewed: {line}", file=sys.stderr)
    for line in result.kept:
        print(f"  kept:    {line}", file=sys.stderr)
    print(
        f"next: einblick device add --config {path} --customer <customer> --name '<device name>'",
        file=sys.stderr,
    )
    print(f"      einblick run --config {path}", file=sys.stderr)
    return 0


def run_until_signalled(
    main: Coroutine[object, object, object],
    on_hangup: Callable[[], object] | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run a coroutine; SIGINT and SIGTERM cancel it, so every component stops in order and the
    last checkpoint is signed. SIGHUP calls ``on_hangup`` (a configuration reload, as daemons
    do) when given; without it SIGHUP (terminal closed) stops like SIGTERM. ``loop_factory``
    makes the event loop (the gateway's paced loop, gateway/messages/pacing.py)."""

    async def until_signalled() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        loop.add_signal_handler(signal.SIGHUP, on_hangup or task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await main

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(until_signalled())


def _run(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from gateway.messages.pacing import paced_loop_factory

    config = config_from(args)
    gateway = Gateway(config)
    # A component that gives up for a reason it explains (the device broker cannot start again)
    # raises out of the TaskGroup as an ExceptionGroup: gateway/cli.py prints each reason.
    interval = config.pipeline.wake_interval_ms / 1000
    run_until_signalled(
        gateway.run(),
        on_hangup=gateway.reload_on_signal,
        loop_factory=paced_loop_factory(interval) if interval > 0 else None,
    )
    return 0


def _reload(args: argparse.Namespace) -> int:
    config = config_from(args)  # a file that does not load is reported here, file:line
    try:
        report = asyncio.run(ask(config.control_socket, ops.RELOAD, timeout=60))
    except GatewayNotRunning:
        print(
            f"einblick: the gateway is not running; it reads {config.source} when it starts",
            file=sys.stderr,
        )
        return 1
    except ControlError as exc:
        print(f"einblick: the running gateway changed nothing: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    return 1 if any(c.action == "refused" for c in report.changes) else 0


def _status(args: argparse.Namespace) -> int:
    if args.instances:
        return _cluster_status(args.instances, as_json=args.json)
    config = config_from(args)
    try:
        status = asyncio.run(request(config.control_socket, "status"))
    except ControlError as exc:
        print(f"einblick: {exc}", file=sys.stderr)
        return 1
    from gateway.operations.portal.pending import as_records, pending_requests, render_requests

    # Customers' erasure requests from the portal wait for the installer: said here.
    waiting = asyncio.run(pending_requests(config.portal_db, config.control_socket))
    if args.json:
        status["erasure_requests"] = [r.model_dump(mode="json") for r in as_records(waiting)]
        sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(render_status(status))
    for line in render_requests(waiting):
        print(line)
    return 0


def _cluster_status(paths: list[Path], *, as_json: bool) -> int:
    """Every instance's status, one after the other; 1 when any is not answering."""
    from gateway.operations.cluster import load_instances

    statuses: dict[str, object] = {}
    failed = 0
    for config in load_instances(paths):
        try:
            status = asyncio.run(request(config.control_socket, "status"))
        except ControlError as exc:
            failed += 1
            statuses[config.instance] = {"error": str(exc)}
            if not as_json:
                print(f"== instance {config.instance}: NOT ANSWERING: {exc}")
            continue
        statuses[config.instance] = status
        if not as_json:
            print(f"== instance {config.instance}")
            print(render_status(status))
    if as_json:
        sys.stdout.write(orjson.dumps(statuses, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 1 if failed else 0


def _consent(args: argparse.Namespace) -> int:
    config = config_from(args)
    fields = ops.ConsentRequest(customer=args.customer, grant=args.grant, by=args.by)
    answer = asyncio.run(ask(config.control_socket, ops.RIGHTS[args.action], fields))
    if not answer.changed:
        # Repeating an action in force writes nothing: no new entry, no new receipt.
        print(answer.message, file=sys.stderr)
        return 0
    receipt = orjson.dumps(answer.receipt, option=orjson.OPT_INDENT_2)
    if args.record:
        args.record.write_bytes(orjson.dumps(answer.record, option=orjson.OPT_INDENT_2) + b"\n")
    if args.receipt:
        args.receipt.write_bytes(receipt + b"\n")
        print(f"{answer.message}; receipt in {args.receipt}", file=sys.stderr)
    else:
        sys.stdout.write(receipt.decode() + "\n")
    return 0


def _receipt_verify(args: argparse.Namespace) -> int:
    receipt = verify_receipt(args.file.read_bytes(), load_public_key(args.key))
    print(
        f"receipt OK: {receipt.type} of grant {receipt.grant!r} for {receipt.customer!r} at {receipt.at}"
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gateway.bench.pipeline import main as bench_main

    return bench_main(list(args.bench_args))


def _demo(args: argparse.Namespace) -> int:
    from gateway.operations.demo import run_demo

    return run_demo(args.dir, tui=not args.no_tui, duration=args.duration, lang=args.lang)
