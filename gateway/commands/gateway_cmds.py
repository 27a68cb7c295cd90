"""Commands that run or ask the gateway: init, run, status, consent, receipt, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TypeAlias

import orjson

from gateway.config import Config, load_config
from gateway.control import ControlError, GatewayNotRunning, request
from gateway.keys import load_public_key
from gateway.receipts import verify_receipt
from gateway.scaffold import InitOptions, initialise
from gateway.visible import neutralise

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
    status.set_defaults(func=_status)

    consent = sub.add_parser("consent", help="give or withdraw a consent (signed entry + receipt)")
    consent_sub = consent.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("withdraw", "withdraw a consent: the next message is withheld"),
        ("give", "give (or restore) a consent"),
    ):
        p = consent_sub.add_parser(action, help=text)
        add_config_option(p)
        p.add_argument("--customer", required=True)
        p.add_argument("--grant", required=True)
        p.add_argument(
            "--by", default="the customer", help="who asked (written into the log and receipt)"
        )
        p.add_argument(
            "--receipt", type=Path, help="write the signed receipt to this file (default: stdout)"
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


def run_until_signalled(main: Any, on_hangup: Any = None) -> None:
    """Run a coroutine; SIGINT and SIGTERM cancel it, so every component stops in order and the
    last checkpoint is signed. SIGHUP calls ``on_hangup`` (a configuration reload, as daemons
    do) when given; without it SIGHUP (terminal closed) stops like SIGTERM."""

    async def runner() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        loop.add_signal_handler(signal.SIGHUP, on_hangup or task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await main

    asyncio.run(runner())


def _run(args: argparse.Namespace) -> int:
    from gateway.app import Gateway

    config = config_from(args)
    gateway = Gateway(config)
    # A component that gives up for a reason it explains (the device broker cannot start again)
    # raises out of the TaskGroup as an ExceptionGroup: gateway/cli.py prints each reason.
    run_until_signalled(gateway.run(), on_hangup=gateway.reload_on_signal)
    return 0


def _reload(args: argparse.Namespace) -> int:
    from gateway.reload import ReloadReport

    config = config_from(args)  # a file that does not load is reported here, file:line
    try:
        answer = asyncio.run(request(config.control_socket, "reload", timeout=60))
    except GatewayNotRunning:
        print(
            f"einblick: the gateway is not running; it reads {config.source} when it starts",
            file=sys.stderr,
        )
        return 1
    except ControlError as exc:
        print(f"einblick: the running gateway changed nothing: {exc}", file=sys.stderr)
        return 1
    report = ReloadReport.model_validate({k: v for k, v in answer.items() if k != "ok"})
    print(report.render())
    return 1 if any(c.action == "refused" for c in report.changes) else 0


def _status(args: argparse.Namespace) -> int:
    config = config_from(args)
    try:
        status = asyncio.run(request(config.control_socket, "status"))
    except ControlError as exc:
        print(f"einblick: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(render_status(status))
    return 0


def render_status(status: dict[str, Any]) -> str:
    now = time.time()
    broker = status["device_broker"]
    pipeline = status["pipeline"]
    lines = [
        f"Einblick {status['instance']} — up {_age(now - status['started_at'])}, key {status['key_fingerprint']}",
        f"device broker: {'connected' if broker['connected'] else 'DISCONNECTED'}"
        + (f" ({neutralise(str(broker['error']))})" if broker.get("error") else ""),
        f"pipeline: {pipeline['received']} received, {pipeline['entries']} entries "
        f"({pipeline['shared']} shared, {pipeline['altered']} altered, {pipeline['withheld']} withheld)",
    ]
    decided = pipeline.get("latency") or {}
    if decided.get("p50_ms") is not None:
        lines.append(
            f"  received → committed: {_latency(decided)} (last {decided['window']:,} messages)"
        )
    if pipeline.get("failing_closed"):
        lines.append(f"  FAILING CLOSED — nothing is forwarded: {pipeline['failing_closed']}")
    if pipeline.get("outbox_full"):
        why = pipeline.get("paused_because") or "the outbox is full"
        lines.append(f"  INTAKE PAUSED — {why}; not taking device messages, the broker holds them")
    clock = status.get("clock") or {}
    if clock.get("steps_back"):
        lines.append(
            f"CLOCK WENT BACK {clock['steps_back']}× (largest step {clock['largest_step_s']:.1f} s"
            + (f", now {clock['behind_s']:.1f} s behind the log" if clock.get("behind_s") else "")
            + "): entries keep the log's time; check NTP (timedatectl status)"
        )
    disk = status.get("disk") or {}
    if disk.get("text"):
        lines.append(f"disk: {disk['text']['en']}")
    if disk.get("error"):
        lines.append(f"disk: {disk['error']}")
    age = status.get("last_checkpoint_age_s")
    lines.append(f"last signed checkpoint: {_age(age) + ' ago' if age is not None else 'none yet'}")
    lines.append("upstreams:")
    for up in status["upstreams"]:
        state = "connected" if up["connected"] else f"DOWN ({neutralise(str(up['last_error']))})"
        lines.append(
            f"  {up['recipient']:<18} {state}; outbox {up['outbox_depth']}, sent {up['sent']}, "
            f"withheld at send {up['withheld_at_send']}"
        )
        queue = up.get("queue")
        if queue:
            lines.append(f"  {'':<18} {_queue(queue)}")
        delivered = up.get("latency") or {}
        if delivered.get("p50_ms") is not None:
            lines.append(f"  {'':<18} outbox → acknowledged: {_latency(delivered)}")
    pending = (status.get("erasures") or {}).get("unacknowledged") or []
    if pending:
        lines.append(f"erasures awaiting acknowledgement: {len(pending)}")
        for item in pending:
            subject = item["customer"] + (f"/{item['device']}" if item.get("device") else "")
            lines.append(
                f"  {item['recipient']:<18} {subject} (requested {item['requested_at'][:19]}, "
                f"notice {item['notice'][:12]}…)"
            )
    refusals = status.get("refusals") or []
    if refusals:
        lines.append(
            "refusals at the device broker (wrong credentials, untrusted certificates, denied "
            "topics, sessions taken over by a second login, queues dropping):"
        )
        # 'who' is the client id or user name a device sent: shown, never interpreted.
        for refusal in refusals[:20]:
            detail = f": {neutralise(str(refusal['detail']))}" if refusal.get("detail") else ""
            lines.append(
                f"  {refusal['kind']:<16} {neutralise(str(refusal['who'])):<32} {refusal['count']}×, "
                f"last {_age(now - refusal['last'])} ago{detail}"
            )
    problems = status.get("device_problems") or []
    if problems:
        lines.append(
            f"devices not admitted to the broker (their topics break the rules): {len(problems)}"
        )
        lines.extend(
            f"  {p['customer']}/{p['device']}: {neutralise(str(p['error']))}" for p in problems
        )
    lines.append("policies:")
    for policy in status["policies"]:
        version = (policy.get("version") or "-")[:12]
        line = f"  {policy.get('customer') or '?':<22} version {version}  {policy['source']}"
        if policy.get("error"):
            line += f"\n    ERROR: {neutralise(str(policy['error']), lines=True)}"
        lines.append(line)
    return "\n".join(lines)


def _queue(queue: dict[str, Any]) -> str:
    """One recipient's queue against its quota, and what happens at the quota."""
    used = max(
        queue["rows"] / max(1, queue["quota_rows"]), queue["bytes"] / max(1, queue["quota_bytes"])
    )
    text = (
        f"queue {queue['rows']:,} of {queue['quota_rows']:,} rows, "
        f"{queue['bytes'] / 1e6:.1f} of {queue['quota_bytes'] / 1e6:.1f} MB ({used:.0%}); "
        f"at the quota: {queue['when_full']}"
    )
    if queue["withheld_at_quota"]:
        text += f"; {queue['withheld_at_quota']:,} withheld at the quota"
    if queue["holding"]:
        text += "; HOLDING INTAKE"
    # Each customer's share: one customer at its share is withheld (or holds) alone.
    for customer, share in (queue.get("customers") or {}).items():
        text += (
            f"\n      customer {neutralise(customer)}: {share['rows']:,} of "
            f"{share['quota_rows']:,} rows, {share['bytes'] / 1e6:.1f} of "
            f"{share['quota_bytes'] / 1e6:.1f} MB"
        )
        if share["withheld_at_quota"]:
            text += f"; {share['withheld_at_quota']:,} withheld at its share"
        if share["holding"]:
            text += "; HOLDING INTAKE"
    return text


def _latency(summary: dict[str, Any]) -> str:
    return f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, max {summary['max_ms']:.1f} ms"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _consent(args: argparse.Namespace) -> int:
    config = config_from(args)
    answer = asyncio.run(
        request(
            config.control_socket, args.action, customer=args.customer, grant=args.grant, by=args.by
        )
    )
    receipt = orjson.dumps(answer["receipt"], option=orjson.OPT_INDENT_2)
    if args.receipt:
        args.receipt.write_bytes(receipt + b"\n")
        print(
            f"consent {args.action} recorded as log entry {answer['entry_seq']}; receipt in {args.receipt}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(receipt.decode() + "\n")
    return 0


def _receipt_verify(args: argparse.Namespace) -> int:
    fields = verify_receipt(args.file.read_bytes(), load_public_key(args.key))
    print(
        f"receipt OK: {fields.get('type')} of grant {fields.get('grant')!r} for {fields.get('customer')!r} at {fields.get('at')}"
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gateway.bench.pipeline import main as bench_main

    return bench_main(list(args.bench_args))


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(args.dir, tui=not args.no_tui, duration=args.duration, lang=args.lang)
