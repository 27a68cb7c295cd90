"""``einblick forget | erasures | report | records``: the customer's rights from the command line.

``forget`` asks the running gateway (control op ``forget``); when no gateway answers on the
control socket it erases on the database itself with the same code, and the notices to the
recipients wait in the outbox for the gateway's next start. ``report`` and ``records`` read the
log and the policies; they never write.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.commands.gateway_cmds import SubParsers, add_config_option, config_from
from gateway.commands.instances import add_instances_option, use_owner
from gateway.config import Config
from gateway.errors import LogError
from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, ask, request
from policies.compiler import CompiledPolicy

__all__ = ["gateway_running", "load_policies", "register"]


async def gateway_running(path: Path) -> bool:
    """True when something answers on the control socket (or might: it did not answer in time)."""
    try:
        await request(path, "status", timeout=5)
    except ControlError as exc:
        return not isinstance(exc.__cause__, FileNotFoundError | ConnectionRefusedError)
    return True


def load_policies(config: Config) -> list[CompiledPolicy]:
    """The customers' compiled policies, loaded from the policy files as the gateway loads them."""
    from gateway.devices.registry import Registry
    from gateway.messages.policyset import PolicySet

    registry = Registry(config.data_path / "devices.json")
    return list(
        PolicySet(config.policies_path, config.recipient_names(), registry.devices).load_all()
    )


def register(sub: SubParsers) -> None:
    forget = sub.add_parser(
        "forget",
        help="erase a customer's or device's personal data on this box (the proof stays)",
    )
    add_config_option(forget)
    forget.add_argument("--customer", required=True)
    forget.add_argument("--device", help="only this device (default: every device)")
    forget.add_argument(
        "--by", required=True, help="at whose request (written into the signed erasure entry)"
    )
    forget.add_argument("--json", action="store_true", help="machine-readable output")
    forget.set_defaults(func=_forget)

    erasures = sub.add_parser(
        "erasures", help="erasures done, and which recipients acknowledged them"
    )
    add_config_option(erasures)
    erasures.add_argument("--customer")
    erasures.add_argument("--json", action="store_true", help="machine-readable output")
    erasures.set_defaults(func=_erasures)

    report = sub.add_parser(
        "report", help="what happened to a customer's data (GDPR Art. 15 and 20), verified"
    )
    add_config_option(report)
    report.add_argument("--customer", required=True)
    add_instances_option(report)
    report.add_argument("--lang", choices=("de", "en"), help="default: the customer's language")
    report.add_argument("--format", choices=("md", "html", "json"), default="md")
    report.add_argument("--since", type=_since, help="only entries from this ISO time on")
    report.add_argument("--key", type=Path, help="public key to verify with (default: configured)")
    report.add_argument("--out", type=Path, help="file to write (default stdout)")
    report.set_defaults(func=_report)

    records = sub.add_parser(
        "records", help="records of processing activities (GDPR Art. 30), from the policies"
    )
    add_config_option(records)
    records.add_argument("--lang", choices=("de", "en"), default="de")
    records.add_argument(
        "--format",
        choices=("md", "json", "csv", "jsonld"),
        default="md",
        help="csv and jsonld (W3C DPV) are for a DPO's tools",
    )
    records.add_argument("--customer", help="only this customer")
    records.add_argument("--out", type=Path, help="file to write (default stdout)")
    records.set_defaults(func=_records)


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, found {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)


def _forget(args: argparse.Namespace) -> int:
    from gateway.operations.old_copies import reach_old_copies
    from gateway.rights.forgetting import forget_offline

    config = config_from(args)
    socket = config.control_socket
    if asyncio.run(gateway_running(socket)):
        fields = ops.ForgetRequest(customer=args.customer, device=args.device, by=args.by)
        answer = asyncio.run(ask(socket, ops.FORGET, fields, timeout=60))
    else:
        policy = next((p for p in load_policies(config) if p.customer == args.customer), None)
        grants = [g.recipient for g in policy.grants] if policy is not None else []
        # an earlier instance's copy of a handed-over customer, as the running gateway does
        pending = asyncio.run(reach_old_copies(config, args.customer)) if args.by.strip() else ()
        answer = ops.ForgetReply.model_validate(
            forget_offline(
                config,
                args.customer,
                args.device,
                args.by,
                known_recipients=grants,
                copies_pending=pending,
            )
        )
        print(
            "the gateway is not running: erased on the database; the notices to the "
            "recipients go out when it starts, retained messages on its broker are not cleared",
            file=sys.stderr,
        )
    if not answer.scrubbed:
        # The erased rows are gone from every table, but until the WAL is copied back and
        # truncated the old page images sit in einblick.db-wal: say so, never claim more.
        print(
            "erased, but the write-ahead log could not be emptied yet (a reader held it): the "
            "old pages stay in einblick.db-wal until it is emptied, at the gateway's next start "
            "at the latest",
            file=sys.stderr,
        )
    if args.json:
        dumped = answer.model_dump(mode="json", exclude_unset=True)
        sys.stdout.write(orjson.dumps(dumped, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    subject = args.customer + (f"/{args.device}" if args.device else "")
    nobody = "nobody here" if answer.not_notified else "nobody (nothing had been passed on)"
    notified = ", ".join(answer.notified) or nobody
    print(
        f"erased {subject}: content of {answer.content_erased} log entries, "
        f"{answer.queued_erased} queued messages, {answer.keys_destroyed} pseudonym keys, "
        f"{answer.retained_cleared} retained messages; signed erasure entry "
        f"{answer.entry_seq}; notified: {notified}"
    )
    if answer.not_notified:
        print(
            f"NOT notified: {', '.join(answer.not_notified)}: the log shows they were sent data "
            f"of {subject}, but they are no longer configured on this gateway, so no erasure "
            "notice can reach them. Tell them yourself (GDPR Art. 19); the signed entry names them"
        )
    for copy in answer.copies_pending:
        # the entry says it too: the erasure is not complete while this copy holds the data
        print(
            f"not erased yet: the copy instance {copy.instance} keeps after a handover until "
            f"its clean-up ({copy.why}). einblick status on {copy.instance} shows it as OLD "
            "COPY with the command that removes it"
        )
    return 0


def _erasures(args: argparse.Namespace) -> int:
    config = config_from(args)
    socket = config.control_socket
    if asyncio.run(gateway_running(socket)):
        fields = ops.CustomerRequest(customer=args.customer)
        found = asyncio.run(ask(socket, ops.ERASURES, fields)).erasures
    else:
        import sqlite3

        from gateway.operations.handlers import erasure_records
        from gateway.operations.old_copies import reach_old_copies
        from gateway.rights.erasure import PendingCopy
        from gateway.rights.erasure_book import list_erasures

        conn = sqlite3.connect(
            Path(config.database_path).absolute().as_uri() + "?mode=ro", uri=True
        )
        try:
            listed = list_erasures(conn, args.customer)
        finally:
            conn.close()

        async def held(customer: str) -> tuple[PendingCopy, ...]:
            return await reach_old_copies(config, customer, clean_up=False)

        found = asyncio.run(erasure_records(listed, held))
    if args.json:
        dumped = [e.model_dump(mode="json") for e in found]
        sys.stdout.write(orjson.dumps(dumped, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not found:
        print("no erasures")
    for e in found:
        subject = e.customer + (f"/{e.device}" if e.device else "")
        # Blank once the customer was forgotten: the requester's name went with the customer.
        by = e.requested_by or "(name erased with the customer)"
        print(f"{e.at}  {subject}  at the request of {by} (entry {e.entry_seq})")
        for n in e.notices:
            state = (
                f"acknowledged {n.acknowledged_at}"
                if n.acknowledged_at
                else ("delivered, not acknowledged" if n.delivered else "waiting to be sent")
            )
            print(f"    {n.recipient:<20} {state}  (notice {n.notice})")
        for copy in e.copies_pending:
            # not complete while an earlier instance still keeps the customer's data
            print(f"    not erased yet: the copy instance {copy.instance} keeps ({copy.why})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from gateway.log.keys import load_public_key
    from gateway.rights.report import build_report, render

    use_owner(args, "report")
    config = config_from(args)
    policy = next((p for p in load_policies(config) if p.customer == args.customer), None)
    key = config.signing_key_path
    candidates = [args.key] if args.key else [key.with_suffix(".pub"), Path(f"{key}.pub")]
    found = next((p for p in candidates if p.exists()), None)
    if args.key and found is None:
        raise LogError(f"report: {args.key}: no such key file")
    public_key = load_public_key(found) if found is not None else None
    data = build_report(
        config.database_path,
        args.customer,
        policy=policy,
        recipients=config.recipient_names(),
        since=args.since,
        public_key=public_key,
        now=datetime.now(UTC),
    )
    lang = args.lang or (policy.language if policy is not None else "de")
    _write(render(data, args.format, lang), args.out)
    return 0 if data["verification"]["ok"] else 1


def _records(args: argparse.Namespace) -> int:
    from gateway.rights.records import build_records, render_records

    config = config_from(args)
    policies = [
        p for p in load_policies(config) if args.customer is None or p.customer == args.customer
    ]
    data = build_records(config, policies, now=datetime.now(UTC))
    _write(render_records(data, args.format, args.lang), args.out)
    return 0
