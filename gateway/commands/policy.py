"""``einblick policy``: check, explain, describe policy files and print their JSON Schema.

    einblick policy check FILE... [--recipients a,b | --config einblick.yaml]
    einblick policy explain FILE --topic T --message JSON [--lang de|en] [--now ISO]
    einblick policy describe FILE [--lang de|en]
    einblick policy suggest --profile NAME [--lang de|en]
    einblick policy schema

Data goes to stdout, diagnostics to stderr. A bad file is a PolicyError (``file:line:column:
key: message``); ``check`` reports every file before exiting 2. Without ``--recipients`` the
recipients a file names are accepted as configured, and ``check`` says so. With ``--config``
the files are checked as that gateway would run them: its recipients, its registered devices
joining their customers' policies, and beside the other files of its policies directory (a file
of the same name there is the one being replaced), so a topic overlapping another customer's or
a second file for one customer is refused here as there; in a cluster, the pairs that another
instance's customer would take topics from are warned about (gateway/messages/contested.py).
``check`` also warns
when a device declares a payload ``profile:`` and a grant releases one of that profile's direct
personal fields (or topic levels) with ``keep``.

``suggest`` prints a profile's fields with label, category, personal or not, and the suggested
treatment as a ready-to-paste ``fields:`` block (withheld fields stay as comments).
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.devices.access import broker_users
from gateway.devices.registry import Registry, check_namespace
from gateway.messages import policyset
from gateway.messages.contested import Contested, claims_of, takings
from gateway.messages.policy_shape import named, read_shape
from gateway.messages.policyset import PolicySet
from gateway.visible import neutralise
from policies.compiler import CompiledPolicy, compile_policy
from policies.decision import Decision
from policies.describe import describe
from policies.engine import Engine
from policies.errors import PolicyError
from policies.lint import lint
from policies.loader import load_policy
from policies.message import Message
from policies.model import policy_schema
from policies.profile_lint import profile_warnings
from policies.profiles import PROFILES
from policies.semantics import LeafVerdict, across_releases, leaf_verdicts
from policies.suggest import render_suggestion

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "policy", help="check, explain and describe policy files", description=__doc__
    )
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate policy files; warnings for odd grants")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument(
        "--recipients", help="comma-separated configured recipients (default: those in the file)"
    )
    check.add_argument(
        "--config",
        type=Path,
        help="check as this gateway would: its recipients, registered devices and policy files",
    )
    check.set_defaults(func=_check)

    explain = commands.add_parser("explain", help="what each recipient would get for a message")
    explain.add_argument("file", metavar="FILE")
    explain.add_argument("--topic", required=True, help="the device topic")
    explain.add_argument("--message", required=True, help="the payload exactly as sent")
    explain.add_argument("--lang", choices=("de", "en"), help="default: the policy's language")
    explain.add_argument("--now", help="evaluate at this ISO time (default: now)")
    explain.set_defaults(func=_explain)

    desc = commands.add_parser("describe", help="the whole policy in plain words")
    desc.add_argument("file", metavar="FILE")
    desc.add_argument("--lang", choices=("de", "en"), help="default: the policy's language")
    desc.set_defaults(func=_describe)

    suggest = commands.add_parser(
        "suggest", help="a payload profile's fields with suggested treatments, as YAML"
    )
    suggest.add_argument("--profile", required=True, choices=sorted(PROFILES), metavar="NAME")
    suggest.add_argument("--lang", choices=("de", "en"), default="en", help="default: en")
    suggest.set_defaults(func=_suggest)

    schema = commands.add_parser("schema", help="JSON Schema of a policy file, for editors")
    schema.set_defaults(func=_schema)


def _recipients(option: str | None) -> dict[str, str] | None:
    if option is None:
        return None
    names = [name.strip() for name in option.split(",") if name.strip()]
    return {name: name for name in names}


def _compile(path: str, recipients: Mapping[str, str] | None) -> CompiledPolicy:
    doc = load_policy(path)
    check_namespace(path, doc)  # as the gateway checks it (gateway/messages/policyset.py)
    return compile_policy(doc, recipients if recipients is not None else named(doc))


def _check(args: argparse.Namespace) -> int:
    if args.config is not None:
        return _check_as_gateway(args.config, [Path(p) for p in args.files])
    recipients = _recipients(args.recipients)
    if recipients is None:
        print(
            "note: no --recipients given; accepting the recipients each file names "
            "(the gateway checks them against its configuration)",
            file=sys.stderr,
        )
    compiled: list[CompiledPolicy] = []
    failed = False
    for path in args.files:
        try:
            policy = _compile(path, recipients)
        except PolicyError as exc:
            print(str(exc), file=sys.stderr)
            failed = True
            continue
        for warning in [*lint(policy), *profile_warnings(policy)]:
            print(str(warning), file=sys.stderr)
        compiled.append(policy)
        print(
            f"{path}: ok: {policy.customer}, {len(policy.devices)} devices, "
            f"{len(policy.grants)} grants, version {policy.short_version}"
        )
    if len(compiled) > 1:
        try:
            Engine(compiled, _NoKeys())  # topic overlaps and duplicate customers across files
        except PolicyError as exc:
            print(str(exc), file=sys.stderr)
            failed = True
    return 2 if failed else 0


class _NoKeys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return None


class _RunKeys:
    """A random key per customer+recipient for this run: pseudonyms differ from the gateway's."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], bytes] = {}

    def key(self, customer: str, recipient: str) -> bytes | None:
        return self._keys.setdefault((customer, recipient), secrets.token_bytes(32))


def _explain(args: argparse.Namespace) -> int:
    policy = _compile(args.file, None)
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError as exc:
            raise PolicyError(
                args.file, f"--now: expected an ISO time, found {args.now!r}"
            ) from exc
        if now.tzinfo is None:
            raise PolicyError(args.file, "--now: add a timezone, e.g. 2026-06-03T09:30:00Z")
    else:
        now = datetime.now(UTC)
    lang = args.lang or policy.language
    engine = Engine([policy], _RunKeys())
    message = Message(args.topic, args.message.encode("utf-8", errors="surrogateescape"), now)
    decisions = engine.evaluate(message, now)
    verdicts = _verdicts(policy, engine, message, decisions)
    for decision in decisions:
        print(f"[{decision.recipient or '-'}] {decision.outcome.value}")
        mine = [d for d in decisions if d.recipient == decision.recipient]
        if decision.grant is not None:
            # One release per applying grant (policies.combine): each names its grant and place.
            place = (
                f" (release {mine.index(decision) + 1} of {len(mine)} to {decision.recipient})"
                if len(mine) > 1
                else ""
            )
            print(f"  grant:   {neutralise(decision.grant)}{place}")
        if decision.topic is not None:
            print(f"  topic:   {neutralise(decision.topic)}")
        if decision.payload is not None:
            print(f"  payload: {neutralise(decision.payload.decode('utf-8', errors='replace'))}")
        if decision.reason is not None:
            print(f"  reason:  {decision.reason.code}")
        print(f"  {neutralise(engine.explain(decision, lang), lines=True)}")
        for v in verdicts.get(id(decision), ()):
            print(f"    {_verdict_line(v, decision.grant)}")
    print("(pseudonyms use a random key for this run; the gateway's differ)", file=sys.stderr)
    return 0


def _verdicts(
    policy: CompiledPolicy, engine: Engine, message: Message, decisions: list[Decision]
) -> dict[int, tuple[LeafVerdict, ...]]:
    """Field by field, per release, what its grant did and which line decided (the engine's own
    walk, ``policies.semantics``; a line of another grant for the recipient where its treatment
    is the more protective; a leaf another release to the recipient carried, as the log's
    explanations say it); only for a JSON body, as the grants see it."""
    try:
        root = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        return {}
    hit = engine.device_for(message.topic)
    captures = hit.captures if hit is not None else {}
    by_recipient: dict[str | None, list[tuple[Decision, tuple[LeafVerdict, ...]]]] = {}
    for decision in decisions:
        grant = policy.grant(decision.grant) if decision.grant else None
        if grant is None or decision.payload is None:
            continue
        # The other grants whose treatment this release carries (policies.combine).
        named = {*decision.raised_by} | {
            r.params.get("grant", "")
            for r in decision.field_reasons.values()
            if r.code == "summarised_elsewhere"
        }
        others = [g for g in policy.grants if g.id in named]
        leaves = leaf_verdicts(grant, root, captures=captures, others=others)
        by_recipient.setdefault(decision.recipient, []).append((decision, leaves))
    out: dict[int, tuple[LeafVerdict, ...]] = {}
    for releases in by_recipient.values():
        for decision, leaves in across_releases(releases):
            out[id(decision)] = leaves
    return out


def _verdict_line(v: LeafVerdict, own: str | None) -> str:
    if v.verdict == "elsewhere":
        return neutralise(
            f"{v.path}: not in this release; it left in the release of grant {v.grant!r} to "
            "the same recipient"
        )
    how = f" ({v.treatment}{' ' + v.detail if v.detail else ''})" if v.verdict == "altered" else ""
    by = f"by {v.rule!r}" if v.rule is not None else "no line of the grant names it"
    if v.grant is not None and v.grant != own:
        by += f" of grant {v.grant!r}"
    return f"{neutralise(v.path)}: {v.verdict}{how}, {neutralise(by)}"


def _describe(args: argparse.Namespace) -> int:
    policy = _compile(args.file, None)
    sys.stdout.write(describe(policy, args.lang or policy.language))
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(policy_schema(), indent=2, ensure_ascii=False))
    return 0


def _suggest(args: argparse.Namespace) -> int:
    sys.stdout.write(render_suggestion(args.profile, args.lang))
    return 0


def _check_as_gateway(config_path: Path, files: list[Path]) -> int:
    """``check --config``: the files loaded as the gateway loads them, beside the rest of its
    policies directory (the module text)."""
    config = load_config(config_path)
    registry = Registry(config.data_path / "devices.json", reserved=broker_users(config))
    registry.load()
    elsewhere = [
        (path, shape.customer)
        for path in files
        if (shape := read_shape(path)) is not None and not config.owns(shape.customer)
    ]
    for path, customer in elsewhere:  # it would be set aside here, not run: say so, not "ok"
        print(
            f"{path}: customer {customer!r} is another instance's in this cluster "
            f"(instance {config.instance!r} runs only its own); check it with the "
            "configuration of the instance that runs it",
            file=sys.stderr,
        )
    files = [path for path in files if path not in {p for p, _ in elsewhere}]
    held = PolicySet(
        config.policies_path, config.recipient_names(), registry.devices, owns=config.owns
    )
    # The set's own log lines are a running gateway's ("this customer shares nothing"):
    # here each result is printed once, in this command's words.
    quiet = logging.getLogger(policyset.__name__)
    quiet.disabled, was = True, quiet.disabled
    try:
        checked = [(path, held.load(path)) for path in files]
        replaced = {path.name for path in files} | {path.resolve() for path in files}
        others = []
        for path in sorted(config.policies_path.glob("*.yaml")):
            if path.name in replaced or path.resolve() in replaced:
                continue
            other = held.load(path)
            entry = held.files.get(path)
            if other is not None:
                others.append(other)
            elif entry is not None and entry.error:
                print(f"note: {entry.error} (the gateway refuses it too)", file=sys.stderr)
        running = [*others, *(policy for _, policy in checked if policy is not None)]
        ours = claims_of(running)
        theirs = held.theirs()
        # Both ways: what these files give up to another instance's customer, and take from it.
        warnings = Contested(ours, theirs).warnings() + takings(ours, theirs)
    finally:
        quiet.disabled = was
    failed = False
    for path, policy in checked:
        if policy is None:
            print(held.files[path].error or f"{path}: does not load", file=sys.stderr)
            failed = True
            continue
        for warning in [*lint(policy), *profile_warnings(policy)]:
            print(str(warning), file=sys.stderr)
        print(
            f"{path}: ok: {policy.customer}, {len(policy.devices)} devices, "
            f"{len(policy.grants)} grants, version {policy.short_version}"
        )
    loaded = [policy for _, policy in checked if policy is not None]
    try:
        Engine([*others, *loaded], _NoKeys())  # the files checked are the later ones: named
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        failed = True
    failed = failed or bool(elsewhere)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 2 if failed else 0
