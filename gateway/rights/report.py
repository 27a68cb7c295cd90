"""The customer's report (GDPR Art. 15 access, Art. 20 portability), built from the signed log.

``build_report`` reads the log database read-only and returns plain data (the JSON export): which
devices, which recipients, which fields went where and how often, what never left the box,
purposes and legal bases, consents given and withdrawn, erasures and their acknowledgements —
and the result of verifying the customer's chain. ``render`` turns it into Markdown or HTML in
German or English; both come from one document model (``gateway.rights.report_text``), so they
say the same, and every value is escaped by ``gateway.rights.markup`` (the log holds names a
customer or installer typed).

Counts come from one grouped query over the customer's entries (bodies repeat, so a year of
telemetry is a few hundred groups), not from reading entry by entry, and only over the entries
the verification covered, read in the verification's own read transaction: an entry committed
after the verification read is neither verified nor counted. With ``tallies`` the counts are
kept per customer and extended by the entries verified since (``gateway.rights.report_tally``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.errors import LogError
from gateway.log.entry import at_from_us, us_from_at
from gateway.log.keys import PublicKey
from gateway.log.onward import verify_customer
from gateway.log.reader import Reader
from gateway.log.reports import VerifyReport
from gateway.log.results import ReportData, ReportGroup, ReportSingle
from gateway.rights.erasure_book import list_erasures
from gateway.rights.held_trees import HeldTrees
from gateway.rights.markup import render_html, render_md
from gateway.rights.report_model import (
    Consent,
    Device,
    Erasure,
    FieldCount,
    Grant,
    NeverShared,
    Recipient,
    Report,
    Withheld,
)
from gateway.rights.report_tally import Tallies, count_verified
from gateway.rights.report_text import document
from policies.compiler import CompiledPolicy
from policies.explain import fold

__all__ = ["FORMAT", "build_report", "render"]

FORMAT = "einblick-report/1"


# -- the data ---------------------------------------------------------------------------------------


def _by_grant(
    item: tuple[tuple[str | None, tuple[tuple[str, str], ...], str | None], int],
) -> tuple[str, tuple[tuple[str, str], ...], str]:
    (grant, purpose, basis), _ = item
    return grant or "", purpose, basis or ""


def _iso(us: int | None) -> str | None:
    return None if us is None else at_from_us(us).isoformat()


def build_report(
    db: Path,
    customer: str,
    *,
    policy: CompiledPolicy | None,
    recipients: Mapping[str, str],
    since: datetime | None = None,
    public_key: PublicKey | None = None,
    now: datetime,
    trees: HeldTrees | None = None,
    tallies: Tallies | None = None,
) -> Report:
    """Everything the log says about ``customer`` (from ``since`` on), as JSON-ready data.

    ``trees``: the customer's tree as the last build verified it, to verify only what is new
    (``gateway.log.onward``); without it, or whenever the onward check does not fit, the whole
    tree is verified. ``tallies``: the counts the last build made, extended by what is new when
    the verification went onward (``gateway.rights.report_tally``)."""
    if not db.exists():
        raise LogError(f"report: {db}: no such log database")
    # One read transaction on one connection: the verification, the counts and the erasures
    # are of one log state, and the counts stop where the verification stopped.
    conn = sqlite3.connect(
        Path(db).absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None
    )
    try:
        conn.execute("BEGIN")
        reader = Reader.over(conn, db, customer=customer)
        held = None if trees is None else trees.get(customer, now)
        verification, kept, onward = verify_customer(
            conn, db, customer, public_key=public_key, held=held
        )
        if trees is not None:
            trees.put(customer, kept, now, onward=onward)
        chain = next((c for c in verification.chains if c.customer == customer), None)
        since_us = 0 if since is None else us_from_at(since)
        data = count_verified(reader, customer, chain, since_us, onward=onward, tallies=tallies)
        return _build(
            conn,
            data,
            customer,
            verification,
            policy=policy,
            recipients=recipients,
            since=since,
            now=now,
        )
    finally:
        conn.close()


def _build(
    conn: sqlite3.Connection,
    data: ReportData,
    customer: str,
    verification: VerifyReport,
    *,
    policy: CompiledPolicy | None,
    recipients: Mapping[str, str],
    since: datetime | None,
    now: datetime,
) -> Report:
    if not data.known and policy is None:
        raise LogError(f"report: nothing is known about customer {customer!r}")
    origin = data.origin
    groups = list(data.groups)
    singles = list(data.singles)
    texts = data.texts
    first_at = min((g.first_us for g in groups), default=None)
    last_at = max((g.last_us for g in groups), default=None)
    chain = next((c for c in verification.chains if c.customer == customer), None)
    problem = verification.first
    return {
        "format": FORMAT,
        "customer": customer,
        "name": policy.name if policy is not None else customer,
        "language": policy.language if policy is not None else "de",
        "timezone": policy.timezone if policy is not None else "Europe/Berlin",
        "gateway": origin,
        "generated_at": now.astimezone(UTC).isoformat(),
        "since": None if since is None else since.astimezone(UTC).isoformat(),
        "period": {"first": _iso(first_at), "last": _iso(last_at)},
        "policy": None
        if policy is None
        else {"version": policy.version, "source": Path(policy.source).name},
        "devices": _devices(policy, groups),
        "recipients": _recipients(policy, recipients, groups),
        "never_shared": _never_shared(policy, groups),
        "withheld": _withheld(groups),
        "consents": _consents(policy, singles, texts),
        "erasures": _erasures(conn, customer, singles, texts),
        "verification": {
            "ok": verification.ok,
            "entries": 0 if chain is None else chain.size - chain.start,
            "checkpoints": 0 if chain is None else chain.checkpoints,
            "unsigned": 0 if chain is None else chain.unsigned,
            "problem": None if problem is None else str(problem),
            "key_problems": list(verification.key_problems),
            "keys": list(verification.trusted),
            "pinned": verification.pinned,
        },
    }


def _decisions(groups: Sequence[ReportGroup]) -> list[ReportGroup]:
    return [g for g in groups if g.body["kind"] == "decision"]


def _devices(policy: CompiledPolicy | None, groups: Sequence[ReportGroup]) -> list[Device]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for body, count, _, _ in _decisions(groups):
        if body["device"] is not None:
            counts[body["device"]][body["outcome"] or "withheld"] += count
    declared = {d.id: d for d in policy.devices} if policy is not None else {}
    out: list[Device] = []
    for device in list(declared) + sorted(set(counts) - set(declared)):
        found = declared.get(device)
        c = counts.get(device, Counter())
        out.append(
            {
                "id": device,
                "name": found.name if found is not None else device,
                "kind": found.kind if found is not None else None,
                "profile": found.profile if found is not None else None,
                "in_policy": found is not None,
                "shared": c["shared"],
                "altered": c["altered"],
                "withheld": c["withheld"],
            }
        )
    return out


def _recipients(
    policy: CompiledPolicy | None,
    names: Mapping[str, str],
    groups: Sequence[ReportGroup],
) -> list[Recipient]:
    grants: dict[str, list[Grant]] = defaultdict(list)
    for grant in policy.grants if policy is not None else ():
        grants[grant.recipient].append(
            {
                "id": grant.id,
                "purpose": dict(grant.purpose),
                "legal_basis": str(grant.legal_basis),
                "devices": list(grant.devices),
                "fields": list(grant.spec.fields),
            }
        )
    sent: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
    messages: Counter[str] = Counter()
    # (grant, purpose, legal basis) as each entry recorded them, per recipient
    under: dict[str, Counter[tuple[str | None, tuple[tuple[str, str], ...], str | None]]] = (
        defaultdict(Counter)
    )
    withheld: Counter[str] = Counter()
    devices: dict[str, set[str]] = defaultdict(set)
    last: dict[str, int] = {}
    for body, count, _, at in _decisions(groups):
        recipient = body["recipient"]
        if recipient is None:
            continue
        if body["outcome"] in ("shared", "altered"):
            messages[recipient] += count
            purpose = tuple(sorted((body.get("purpose") or {}).items()))
            under[recipient][(body.get("grant"), purpose, body.get("legal_basis"))] += count
            last[recipient] = max(last.get(recipient, 0), at)
            if body["device"]:
                devices[recipient].add(body["device"])
            for path in body["shared"]:
                sent[recipient][(path, "keep", "")] += count
            for path, treatment, detail in body["altered"]:
                sent[recipient][(path, treatment, detail)] += count
        else:
            withheld[recipient] += count
    out: list[Recipient] = []
    for recipient in sorted(set(grants) | set(messages) | set(withheld)):
        fields: list[FieldCount] = [
            {"field": path, "treatment": treatment, "detail": detail, "count": n}
            for (path, treatment, detail), n in sorted(sent[recipient].items())
        ]
        out.append(
            {
                "id": recipient,
                "name": names.get(recipient, recipient),
                "grants": grants.get(recipient, []),
                "under": [
                    {"grant": g, "purpose": dict(p), "legal_basis": b, "count": n}
                    for (g, p, b), n in sorted(under[recipient].items(), key=_by_grant)
                ],
                "messages": messages[recipient],
                "withheld": withheld[recipient],
                "devices": sorted(devices[recipient]),
                "last": _iso(last.get(recipient)),
                "fields": fields,
            }
        )
    return out


def _never_shared(
    policy: CompiledPolicy | None, groups: Sequence[ReportGroup]
) -> list[NeverShared]:
    """Per device: fields seen but never passed on to anyone; devices that shared nothing.

    A field counts as passed on when it, or an object or array holding it, left in any
    release (older entries list a kept object by its own path, newer ones leaf by leaf), with
    array indices folded (``r[0].v`` and ``r[3].v`` are one field). A device whose release
    lists were cut by the caps (``omitted``) gets no "never passed on" list at all: a field
    the cut left out may have left, and the report must not say it did not."""
    seen: dict[str, set[str]] = defaultdict(set)
    left: dict[str, set[str]] = defaultdict(set)
    cut: set[str] = set()
    for body, _, _, _ in _decisions(groups):
        device = body["device"]
        if device is None:
            continue
        seen[device].update(fold(body["withheld"]))
        if body["outcome"] in ("shared", "altered"):
            left[device].update(fold(body["shared"]))
            left[device].update(fold([a[0] for a in body["altered"]]))
            omitted = body.get("omitted") or {}
            if omitted.get("shared") or omitted.get("altered"):
                cut.add(device)
    declared = [d.id for d in policy.devices] if policy is not None else []
    out: list[NeverShared] = []
    for device in declared + sorted(set(seen) - set(declared)):
        gone = left.get(device, set())
        out.append(
            {
                "device": device,
                "nothing_left": not gone,
                "fields": []
                if device in cut
                else sorted(f for f in seen.get(device, set()) if not _left(f, gone)),
            }
        )
    return out


def _left(path: str, gone: set[str]) -> bool:
    """True when ``path`` or an object or array holding it is among the released paths."""
    if "$payload" in gone or path in gone:
        return True
    return any(char in ".[" and path[:index] in gone for index, char in enumerate(path))


# Reason params that differ from message to message (a size): the report counts a reason once
# per its other params, and its text names none of these (each entry does).
_PER_MESSAGE = frozenset({"size", "topic"})


def _withheld(groups: Sequence[ReportGroup]) -> list[Withheld]:
    """Withheld messages by reason and params (a line each), most first: one line's text is
    true of every message it counts."""
    counted: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for body, count, _, _ in _decisions(groups):
        if body["outcome"] == "withheld" and body["reason"]:
            params = body["reason_params"].items()
            kept = tuple(sorted((k, v) for k, v in params if k not in _PER_MESSAGE))
            counted[body["reason"], kept] += count
    return [
        {"reason": code, "params": dict(kept), "count": n}
        for (code, kept), n in sorted(counted.items(), key=lambda kv: -kv[1])
    ]


# Entry kinds of a customer's rights over a grant (gateway/rights/consent.py) → report action.
_RIGHT_ACTIONS = {
    "consent_given": "given",
    "consent_withdrawn": "withdrawn",
    "objection": "objected",
    "objection_lifted": "objection_lifted",
    "restriction": "restricted",
    "restriction_lifted": "restriction_lifted",
}


def _consents(
    policy: CompiledPolicy | None,
    singles: Sequence[ReportSingle],
    texts: Mapping[str, str],
) -> list[Consent]:
    out: list[Consent] = []
    for grant in policy.grants if policy is not None else ():
        if grant.consent is not None:
            out.append(
                {
                    "grant": grant.id,
                    "recipient": grant.recipient,
                    "action": "recorded",
                    "by": grant.consent.given_by,
                    "at": grant.consent.given_at.astimezone(UTC).isoformat(),
                    "until": None
                    if grant.consent.until is None
                    else grant.consent.until.astimezone(UTC).isoformat(),
                    "entry_seq": None,
                }
            )
    for seq, at, body in singles:
        if body["kind"] in _RIGHT_ACTIONS:
            out.append(
                {
                    "grant": body["grant"],
                    "recipient": body["recipient"],
                    "action": _RIGHT_ACTIONS[body["kind"]],
                    "by": body["reason_params"].get("by", ""),
                    "at": _iso(at),
                    "until": None,
                    "entry_seq": seq,
                    "text": {"de": texts[body["text_de"]], "en": texts[body["text_en"]]},
                }
            )
    return out


def _erasures(
    conn: sqlite3.Connection,
    customer: str,
    singles: Sequence[ReportSingle],
    texts: Mapping[str, str],
) -> list[Erasure]:
    notices = {e["entry_seq"]: e["notices"] for e in list_erasures(conn, customer)}
    return [
        {
            "entry_seq": seq,
            "at": _iso(at),
            "subject": body["subject"],
            "requested_by": body["reason_params"].get("requested_by", ""),
            "text": {"de": texts[body["text_de"]], "en": texts[body["text_en"]]},
            "notices": notices.get(seq, []),
        }
        for seq, at, body in singles
        if body["kind"] == "erasure"
    ]


def render(data: Report, fmt: str, lang: str) -> str:
    """``json`` (the machine-readable export), ``md`` or ``html`` in ``lang``."""
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    doc = document(data, lang)
    return render_md(doc) if fmt == "md" else render_html(doc, lang)
