"""``einblick policy``: check, explain, describe policy files and print their JSON Schema.

    einblick policy check FILE... [--recipients a,b]
    einblick policy explain FILE --topic T --message JSON [--lang de|en] [--now ISO]
    einblick policy describe FILE [--lang de|en]
    einblick policy suggest --profile NAME [--lang de|en]
    einblick policy schema

Data goes to stdout, diagnostics to stderr. A bad file is a PolicyError (``file:line:column:
key: message``); ``check`` reports every file before exiting 2. Without ``--recipients`` the
recipients a file names are accepted as configured, and ``check`` says so. ``check`` also warns
when a device declares a payload ``profile:`` and a grant releases one of that profile's direct
personal fields (or topic levels) with ``keep``.

``suggest`` prints a profile's fields with label, category, personal or not, and the suggested
treatment as a ready-to-paste ``fields:`` block (withheld fields stay as comments).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from gateway.visible import neutralise
from policies.compiler import CompiledGrant, CompiledPolicy, compile_policy
from policies.describe import describe, grant_fields
from policies.engine import Engine
from policies.errors import PolicyError
from policies.lint import PolicyWarning, lint
from policies.loader import load_policy
from policies.message import Message
from policies.model import PolicyDocument, policy_schema
from policies.paths import specificity
from policies.profiles import (
    PROFILES,
    Personal,
    Profile,
    Treatment,
    category_label,
    profile,
    suggestions,
)
from policies.semantics import leaf_verdicts
from policies.topics import BUILTIN_PLACEHOLDERS

__all__ = [
    "SuggestedGrant",
    "profile_warnings",
    "register",
    "render_suggestion",
    "suggested_grant",
]


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


def _named(doc: PolicyDocument) -> dict[str, str]:
    return {grant.recipient: grant.recipient for grant in doc.grants}


def _recipients(option: str | None) -> dict[str, str] | None:
    if option is None:
        return None
    names = [name.strip() for name in option.split(",") if name.strip()]
    return {name: name for name in names}


def _compile(path: str, recipients: Mapping[str, str] | None) -> CompiledPolicy:
    doc = load_policy(path)
    return compile_policy(doc, recipients if recipients is not None else _named(doc))


def _check(args: argparse.Namespace) -> int:
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
    for decision in engine.evaluate(message, now):
        print(f"[{decision.recipient or '-'}] {decision.outcome.value}")
        if decision.topic is not None:
            print(f"  topic:   {neutralise(decision.topic)}")
        if decision.payload is not None:
            print(f"  payload: {neutralise(decision.payload.decode('utf-8', errors='replace'))}")
        if decision.reason is not None:
            print(f"  reason:  {decision.reason.code}")
        print(f"  {neutralise(engine.explain(decision, lang), lines=True)}")
        grant = policy.grant(decision.grant) if decision.grant else None
        if grant is not None and decision.payload is not None:
            # The other grants whose treatment this release carries (policies.combine).
            named = {*decision.raised_by} | {
                r.params.get("grant", "")
                for r in decision.field_reasons.values()
                if r.code == "summarised_elsewhere"
            }
            others = [g for g in policy.grants if g.id in named]
            _print_verdicts(grant, message, engine, others)
    print("(pseudonyms use a random key for this run; the gateway's differ)", file=sys.stderr)
    return 0


def _print_verdicts(
    grant: CompiledGrant, message: Message, engine: Engine, others: list[CompiledGrant]
) -> None:
    """Field by field, what the deciding grant did and which line decided (the engine's own
    walk, ``policies.semantics``; a line of another grant for the recipient where its treatment
    is the more protective); only for a JSON body, as the grants see it."""
    try:
        root = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        return
    hit = engine.device_for(message.topic)
    captures = hit.captures if hit is not None else {}
    for v in leaf_verdicts(grant, root, captures=captures, others=others):
        how = (
            f" ({v.treatment}{' ' + v.detail if v.detail else ''})"
            if v.verdict == "altered"
            else ""
        )
        by = f"by {v.rule!r}" if v.rule is not None else "no line of the grant names it"
        if v.grant is not None and v.grant != grant.id:
            by += f" of grant {v.grant!r}"
        print(f"    {neutralise(v.path)}: {v.verdict}{how}, {neutralise(by)}")


def _describe(args: argparse.Namespace) -> int:
    policy = _compile(args.file, None)
    sys.stdout.write(describe(policy, args.lang or policy.language))
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(policy_schema(), indent=2, ensure_ascii=False))
    return 0


# -- suggest: a profile's suggested treatments as a grant ---------------------------------------

_LAT = ("lat", "latitude")
_LON = ("lon", "lng", "longitude")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class SuggestedGrant:
    """What a grant that follows a profile's suggestions releases on one topic layout.

    ``fields`` and ``topic_levels`` are policy YAML data (``{"lat": {"coarsen": {...}}}``);
    ``companions`` names the longitude released with each coarsened latitude's rule;
    ``left_out`` says why a field (or topic level) is not released.
    """

    fields: dict[str, object]
    topic_levels: dict[str, str]
    companions: dict[str, str]
    left_out: dict[str, str]


def _split(path: str) -> tuple[str, str]:
    head, _, last = path.rpartition(".")
    return head, last


def _number(detail: str, default: float) -> float:
    try:
        return float(detail.split(maxsplit=1)[0])
    except (IndexError, ValueError):
        return default


def _yaml_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def suggested_grant(profile_name: str, topic_pattern: str | None = None) -> SuggestedGrant:
    """The fields a grant releases when it follows ``profile_name``'s suggested treatments.

    With ``topic_pattern`` (one of the profile's patterns) only the fields that occur on it; a
    plain-text body there (``$payload``) is then the grant's only field, as the policy requires.
    Without it every JSON field of the profile. Withheld and aggregated fields are left out:
    default deny means a field that is not listed never leaves.
    """
    p = profile(profile_name)
    order = {s.path: s for s in suggestions(profile_name)}
    applicable = [
        f
        for f in p.fields
        if (topic_pattern is None and f.path != "$payload")
        or (topic_pattern is not None and (not f.topics or topic_pattern in f.topics))
    ]
    if topic_pattern is not None and any(f.path == "$payload" for f in applicable):
        applicable = [f for f in applicable if f.path == "$payload" or f.path.startswith("$topic.")]
    applicable.sort(key=lambda f: list(order).index(f.path))
    fields: dict[str, object] = {}
    levels: dict[str, str] = {}
    companions: dict[str, str] = {}
    left_out: dict[str, str] = {}
    coarsened = {f.path for f in applicable if f.treatment is Treatment.COARSEN}
    for f in applicable:
        how, detail = f.treatment, f.detail
        if f.path.startswith("$topic."):
            name = f.path.removeprefix("$topic.")
            if topic_pattern is not None and f"{{{name}}}" not in topic_pattern:
                continue
            if name in BUILTIN_PLACEHOLDERS:
                left_out[f.path] = (
                    f"{{{name}}} in a grant's topic is the policy's own {name}; give the capture "
                    f"another name (e.g. {{{name}_level}}) to use it"
                )
            elif how in (Treatment.KEEP, Treatment.PSEUDONYMISE):
                levels[name] = how.value
            else:
                left_out[f.path] = f"{how.value}: leave {{{name}}} out of the grant's topic"
            continue
        if how is Treatment.KEEP:
            fields[f.path] = "keep"
        elif how is Treatment.PSEUDONYMISE:
            fields[f.path] = "pseudonymise"
        elif how is Treatment.TRUNCATE:
            fields[f.path] = {"truncate": detail or "minute"}
        elif how is Treatment.ROUND:
            fields[f.path] = {"round": _yaml_number(_number(detail, 1.0))}
        elif how is Treatment.COARSEN:
            head, last = _split(f.path)
            partners = [
                other
                for other in coarsened
                if _split(other)[0] == head
                and _split(other)[1] in (_LON if last in _LAT else _LAT if last in _LON else ())
            ]
            if not partners:
                left_out[f.path] = "coarsen needs a latitude/longitude pair; withheld alone"
            elif last in _LAT:
                grid = _yaml_number(_number(detail, 1000.0))
                fields[f.path] = {"coarsen": {"grid_m": grid, "lon": _split(partners[0])[1]}}
            else:
                companions[f.path] = partners[0]
        elif how is Treatment.AGGREGATE:
            left_out[f.path] = (
                f"aggregate ({detail or 'over a window'}): a grant of its own with "
                f"aggregate: {{window: 15m, fields: {{{f.path}: [mean]}}}}"
            )
        else:
            left_out[f.path] = "withhold"
    return SuggestedGrant(fields, levels, companions, left_out)


def _key(path: str) -> str:
    return path if _SIMPLE_KEY.match(path) else json.dumps(path)


def _value(value: object) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def _describe_field(p: Profile, path: str, lang: str) -> str:
    f = p.field(path)
    assert f is not None
    personal = {
        Personal.DIRECT: {"de": "direkt personenbezogen", "en": "direct personal data"},
        Personal.INDIRECT: {"de": "indirekt personenbezogen", "en": "indirect personal data"},
        Personal.NONE: {"de": "nicht personenbezogen", "en": "not personal"},
    }[f.personal][lang]
    rationale = next(s.rationale[lang] for s in suggestions(p.name) if s.path == path)
    return f"{f.labels[lang]} — {category_label(f.category, lang)}, {personal}. {rationale}"


def render_suggestion(profile_name: str, lang: str) -> str:
    """``policy suggest`` output: commented YAML to paste under a grant."""
    p = profile(profile_name)
    grant = suggested_grant(profile_name)
    lines = [
        f"# {p.title[lang]}: suggested treatments (einblick policy suggest --profile {p.name})",
        f"# topics: {', '.join(p.topics)}",
    ]
    if p.notes:
        lines.append(f"# {p.notes}")
    lines += [
        "# Paste under a grant. A field that is not listed never leaves (default deny);",
        "# withheld fields are shown commented out.",
    ]

    def entry(text: str, comment: str, width: int = 44) -> str:
        return f"{text:<{width}} # {comment}"

    level_fields = [f for f in p.fields if f.path.startswith("$topic.")]
    if level_fields:
        lines.append('# Topic levels: use them in the grant\'s topic, e.g. topic: "…/{name}"')
        lines.append("# topic_levels:")
        for f in level_fields:
            # Each line uncommented is valid YAML (name: keep | pseudonymise); a level that may
            # not leave as it is stays a comment of a comment, with the reason after the '#'.
            name = f.path.removeprefix("$topic.")
            how = grant.topic_levels.get(name)
            if how is not None:
                lines.append(entry(f"#   {name}: {how}", _describe_field(p, f.path, lang)))
            else:
                why = grant.left_out.get(f.path, "leave it out")
                lines.append(
                    entry(
                        f"#   # {name}: not in the topic",
                        f"{why}. {_describe_field(p, f.path, lang)}",
                    )
                )
    lines.append("fields:")
    described = [s.path for s in suggestions(profile_name) if s.path in _json_paths(p)]
    for path in described:
        comment = _describe_field(p, path, lang)
        if path in grant.fields:
            lines.append(entry(f"  {_key(path)}: {_value(grant.fields[path])}", comment))
        elif path in grant.companions:
            lines.append(
                entry(f"  # {_key(path)}: coarsened with {grant.companions[path]}", comment)
            )
        else:
            why = grant.left_out.get(path, "withhold")
            lines.append(entry(f"  # {_key(path)}: {why}", comment))
    whole = [f for f in p.fields if f.path == "$payload"]
    for f in whole:
        on = ", ".join(f.topics) or "every topic"
        how = f.treatment.value
        shown = how if how in ("keep", "pseudonymise") else f"withhold ({how} cannot apply)"
        lines += [
            f"# Plain-text bodies on {on}: a grant of its own, $payload must be its only field:",
            entry(f'#   "$payload": {shown}', _describe_field(p, "$payload", lang)),
        ]
    return "\n".join(lines) + "\n"


def _json_paths(p: Profile) -> set[str]:
    return {f.path for f in p.fields if not f.path.startswith("$")}


def _suggest(args: argparse.Namespace) -> int:
    sys.stdout.write(render_suggestion(args.profile, args.lang))
    return 0


# -- check: direct personal data of a device's profile released unchanged -----------------------


def _segments(path: str) -> list[str]:
    return [segment.removesuffix("[]").removesuffix("[]") for segment in path.split(".")]


def _releases(grant_path: str, field_path: str) -> bool:
    """True when the grant's path releases the profile field or a part of it."""
    if grant_path == "$payload":
        return True
    if field_path.startswith("$"):
        return False
    granted, field = _segments(grant_path), _segments(field_path)
    return all(g == f or "*" in (g, f) for g, f in zip(granted, field, strict=False))


def _decides(fields: Sequence[str], path: str, field_path: str) -> bool:
    """True when ``path`` decides ``field_path`` (or a part of it) by the specificity rule of
    ``policies.paths``: no more specific path of the grant names the field itself."""
    if len(_segments(path)) > len(_segments(field_path)):
        return True  # the kept path lies inside the field: that part leaves unchanged
    rank = specificity(path)
    return not any(
        other != path
        and _releases(other, field_path)
        and len(_segments(other)) <= len(_segments(field_path))
        and specificity(other) > rank
        for other in fields
    )


def profile_warnings(policy: CompiledPolicy) -> list[PolicyWarning]:
    """A grant that keeps a direct personal field of a covered device's profile unchanged."""
    out: list[PolicyWarning] = []
    for index, device in enumerate(policy.devices):
        if device.profile is None:
            continue
        known = PROFILES.get(device.profile)
        if known is None:
            line = policy.document.locate(("devices", index, "profile"))[0]
            out.append(
                PolicyWarning(
                    policy.source,
                    line,
                    f"device {device.id!r} names payload profile {device.profile!r}; known "
                    f"profiles: {', '.join(sorted(PROFILES))}",
                )
            )
            continue
        direct = [f for f in known.fields if f.personal is Personal.DIRECT]
        for grant in policy.grants:
            if device.id not in grant.devices:
                continue
            fields = grant_fields(grant.spec)  # with the longitude of a coarsened pair
            kept = [path for path, how in grant.spec.fields.items() if how == "keep"]
            kept += [f"$topic.{n}" for n, how in grant.spec.topic_levels.items() if how == "keep"]
            for path in kept:
                for f in direct:
                    hit = (
                        path == f.path
                        if path.startswith("$topic.") or f.path.startswith("$topic.")
                        else _releases(path, f.path) and _decides(fields, path, f.path)
                    )
                    if not hit:
                        continue
                    suggested = f.treatment.value + (f" {f.detail}" if f.detail else "")
                    out.append(
                        PolicyWarning(
                            policy.source,
                            grant.line,
                            f"grant {grant.id!r} releases {f.path!r} ({f.labels['en']}, direct "
                            f"personal data in profile {known.name!r} of device {device.id!r}) "
                            f"unchanged with keep via {path!r}; suggested: {suggested}",
                        )
                    )
    return out
