"""Records of processing activities (GDPR Art. 30), generated from the loaded policies.

One activity per grant: purpose, legal basis (and the consent it rests on), categories of data,
recipient and how data reaches it, the devices (data sources) it covers, the safeguards applied
on the way out, and retention. Categories come from the device's payload profile
(``policies/profiles.py``) where the device has one; otherwise the field names are the categories.
Nothing here is written by hand: change a policy and the record changes with it.

Formats: Markdown or HTML for people, our JSON (``einblick-records/1``), and for a DPO's tools
CSV (one row per activity, stable English column names) and JSON-LD with the W3C Data Privacy
Vocabulary (w3id.org/dpv: one ``dpv:Process`` per activity, legal bases as DPV's EU GDPR
extension names them), the same vocabulary as the consent records (gateway/rights/receipts.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from gateway.config import Config
from gateway.locale import join, tr
from gateway.rights.markup import Block, Document, Table, render_html, render_md
from gateway.rights.receipts import DPV_CONTEXT, legal_basis_iri
from gateway.rights.record_types import Activity, Category, Consent, Limits, Records
from gateway.rights.retention import retention_for
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import LegalBasis
from policies.describe import grant_fields
from policies.explain import legal_basis_text
from policies.model import ConsentRecord, RetentionSpec
from policies.profiles import PROFILES, category_label

__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "build_records",
    "records_csv",
    "records_jsonld",
    "render_records",
]

FORMAT = "einblick-records/1"
_SAFEGUARDS = ("pseudonymise", "coarsen", "round", "truncate", "aggregate")


def _fields(grant: CompiledGrant) -> dict[str, str]:
    """Path -> treatment name of everything the grant can release."""
    if grant.opaque:
        return {"$payload": "keep"}
    if grant.aggregate is not None:
        return {path: "aggregate" for path in grant.aggregate.fields}
    out: dict[str, str] = {}
    for path, rule in grant.spec.fields.items():
        if isinstance(rule, str):
            out[path] = rule
        else:
            out[path] = next(iter(rule.model_dump(exclude_none=True)), "keep")
    # What leaves besides the named paths: a coarsened latitude's longitude (grant_fields),
    # and the device's own topic when the upstream topic uses {topic}.
    for path in grant_fields(grant.spec):
        out.setdefault(path, "coarsen")
    if "topic" in grant.template.names:
        out["$topic"] = "keep"
    for level, treatment in grant.topic_levels.items():
        out[f"$topic.{level}"] = treatment
    return out


def _categories(
    policy: CompiledPolicy, grant: CompiledGrant, paths: Sequence[str]
) -> list[Category]:
    """[{category, label{de,en}, fields}] from the covered devices' profiles; else field names."""
    found: dict[str, Category] = {}
    profiles = [
        PROFILES[d.profile]
        for d in policy.devices
        if d.id in grant.devices and d.profile and d.profile in PROFILES
    ]
    for path in paths:
        field = next((f for p in profiles if (f := p.field(path)) is not None), None)
        if field is None:
            key = f"field:{path}"
            found[key] = {"category": None, "label": {"de": path, "en": path}, "fields": [path]}
            continue
        item = found.setdefault(
            str(field.category),
            {
                "category": str(field.category),
                "personal": str(field.personal),
                "label": {lang: category_label(field.category, lang) for lang in ("de", "en")},
                "fields": [],
            },
        )
        item["fields"].append(path)
    return list(found.values())


def _consent(record: ConsentRecord | None) -> Consent | None:
    """The consent record as JSON, its dates as pydantic writes them (what the records said)."""
    if record is None:
        return None
    dumped = record.model_dump(mode="json")
    return {
        "given_by": dumped["given_by"],
        "given_at": dumped["given_at"],
        "until": dumped["until"],
        "reference": dumped["reference"],
    }


def _limits(spec: RetentionSpec) -> Limits:
    return {"content_days": spec.content_days, "entries_years": spec.entries_years}


def build_records(config: Config, policies: Sequence[CompiledPolicy], *, now: datetime) -> Records:
    recipients = {r.name: r for r in config.recipients}
    activities: list[Activity] = []
    for policy in sorted(policies, key=lambda p: p.customer):
        for grant in policy.grants:
            fields = _fields(grant)
            recipient = recipients.get(grant.recipient)
            activities.append(
                {
                    "customer": policy.customer,
                    "customer_name": policy.name,
                    "policy_version": policy.version,
                    "grant": grant.id,
                    "purpose": dict(grant.purpose),
                    "legal_basis": str(grant.legal_basis),
                    "consent": _consent(grant.consent),
                    "recipient": grant.recipient,
                    "recipient_name": grant.recipient_name,
                    "transport": None
                    if recipient is None
                    else {"host": recipient.host, "tls": recipient.uses_tls},
                    "devices": [
                        {"id": d.id, "name": d.name, "kind": d.kind, "profile": d.profile}
                        for d in policy.devices
                        if d.id in grant.devices
                    ],
                    "categories": _categories(policy, grant, list(fields)),
                    "fields": fields,
                    "safeguards": sorted({t for t in fields.values() if t in _SAFEGUARDS}),
                    # the same limits the retention job applies (gateway/rights/retention.py)
                    "retention": _limits(
                        retention_for(config.retention, policy.document.retention)
                    ),
                    "valid_from": None
                    if grant.valid_from is None
                    else grant.valid_from.astimezone(UTC).isoformat(),
                    "valid_until": None
                    if grant.valid_until is None
                    else grant.valid_until.astimezone(UTC).isoformat(),
                }
            )
    return {
        "format": FORMAT,
        "gateway": config.instance,
        "generated_at": now.astimezone(UTC).isoformat(),
        "retention": {
            # the box's default; each activity states its customer's limits ("retention")
            "log": _limits(config.retention),
            "outbox_max_rows": config.outbox.max_rows,
            "pseudonym_keys": "until_erasure",
        },
        "activities": activities,
    }


def _document(data: Records, lang: str) -> Document:
    sections: list[tuple[str, list[Block]]] = [
        (
            tr(lang, "records.section.about"),
            [
                tr(
                    lang,
                    "records.intro",
                    gateway=data["gateway"],
                    generated=data["generated_at"][:16].replace("T", " ") + " UTC",
                ),
                [
                    tr(lang, "records.retention.log"),
                    tr(
                        lang,
                        "records.retention.outbox",
                        n=str(data["retention"]["outbox_max_rows"]),
                    ),
                    tr(lang, "records.retention.keys"),
                    tr(lang, "records.retention.recipients"),
                ],
                [tr(lang, "records.tom.log"), tr(lang, "records.tom.default_deny")],
            ],
        )
    ]
    by_customer: dict[str, list[Activity]] = {}
    for activity in data["activities"]:
        by_customer.setdefault(activity["customer"], []).append(activity)
    for customer, activities in by_customer.items():
        blocks: list[Block] = []
        for a in activities:
            purpose = a["purpose"].get(lang) or next(iter(a["purpose"].values()), "")
            basis = legal_basis_text(lang, LegalBasis(a["legal_basis"]))
            if a["consent"]:
                basis += " — " + tr(
                    lang,
                    "records.consent",
                    by=a["consent"]["given_by"],
                    at=a["consent"]["given_at"][:10],
                )
            categories = (
                join(
                    lang,
                    [
                        c["label"][lang]
                        + ("" if c["category"] is None else f" ({', '.join(c['fields'])})")
                        for c in a["categories"]
                    ],
                )
                or "—"
            )
            transport = a["transport"]
            channel = (
                "—"
                if transport is None
                else tr(
                    lang,
                    "records.transport.tls" if transport["tls"] else "records.transport.plain",
                    host=transport["host"],
                )
            )
            safeguards = join(lang, [tr(lang, f"records.safeguard.{s}") for s in a["safeguards"]])
            blocks.append(f"**{tr(lang, 'records.activity', grant=a['grant'], purpose=purpose)}**")
            blocks.append(
                Table(
                    [tr(lang, "records.col.what"), tr(lang, "records.col.value")],
                    [
                        [tr(lang, "records.row.purpose"), purpose],
                        [tr(lang, "records.row.basis"), basis],
                        [tr(lang, "records.row.categories"), categories],
                        [tr(lang, "records.row.fields"), ", ".join(a["fields"]) or "—"],
                        [
                            tr(lang, "records.row.subjects"),
                            tr(lang, "records.subjects", name=a["customer_name"]),
                        ],
                        [
                            tr(lang, "records.row.sources"),
                            join(lang, [d["name"] for d in a["devices"]]) or "—",
                        ],
                        [tr(lang, "records.row.recipient"), a["recipient_name"]],
                        [tr(lang, "records.row.transport"), channel],
                        [
                            tr(lang, "records.row.safeguards"),
                            safeguards or tr(lang, "records.safeguard.none"),
                        ],
                        [tr(lang, "records.row.retention"), _retention(lang, a["retention"])],
                        [
                            tr(lang, "records.row.valid"),
                            f"{(a['valid_from'] or '—')[:10]} – {(a['valid_until'] or '—')[:10]}",
                        ],
                    ],
                )
            )
        name = activities[0]["customer_name"]
        sections.append((f"{name} ({customer})", blocks))
    return Document(tr(lang, "records.title", gateway=data["gateway"]), sections)


def _retention(lang: str, limits: Limits) -> str:
    days, years = limits["content_days"], limits["entries_years"]
    content = (
        tr(lang, "records.retention.content_days", n=str(days))
        if days
        else tr(lang, "records.retention.content_kept")
    )
    entries = (
        tr(lang, "records.retention.entries_years", n=str(years))
        if years
        else tr(lang, "records.retention.entries_kept")
    )
    return f"{content}; {entries}"


CSV_COLUMNS = (
    "customer",
    "customer_name",
    "grant",
    "purpose",
    "legal_basis",
    "legal_basis_text",
    "consent_given_by",
    "consent_given_at",
    "data_subjects",
    "categories",
    "fields",
    "sources",
    "recipient",
    "recipient_name",
    "transport",
    "safeguards",
    "content_days",
    "entries_years",
    "valid_from",
    "valid_until",
    "policy_version",
)


def records_csv(data: Records, lang: str) -> str:
    """One row per activity; lists inside a cell are joined with "; ". Texts in ``lang``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
    writer.writerow(CSV_COLUMNS)
    for a in data["activities"]:
        consent = a["consent"]
        transport = a["transport"]
        writer.writerow(
            [
                a["customer"],
                a["customer_name"],
                a["grant"],
                a["purpose"].get(lang) or next(iter(a["purpose"].values()), ""),
                a["legal_basis"],
                legal_basis_text(lang, LegalBasis(a["legal_basis"])),
                "" if consent is None else consent["given_by"],
                "" if consent is None else consent["given_at"],
                tr(lang, "records.subjects", name=a["customer_name"]),
                "; ".join(c["label"][lang] for c in a["categories"]),
                "; ".join(f"{path}={how}" for path, how in a["fields"].items()),
                "; ".join(d["name"] for d in a["devices"]),
                a["recipient"],
                a["recipient_name"],
                ""
                if transport is None
                else f"{'mqtts' if transport['tls'] else 'mqtt'}://{transport['host']}",
                "; ".join(a["safeguards"]),
                a["retention"].get("content_days") or "",
                a["retention"].get("entries_years") or "",
                a["valid_from"] or "",
                a["valid_until"] or "",
                a["policy_version"],
            ]
        )
    return out.getvalue()


# Safeguards as DPV technical measures; the treatments DPV has no concept for are described.
_MEASURES = {"pseudonymise": "dpv:Pseudonymisation"}


def records_jsonld(data: Records) -> dict[str, object]:
    """The records as JSON-LD with the DPV vocabulary: one ``dpv:Process`` per activity."""
    gateway = data["gateway"]
    processes = []
    for a in data["activities"]:
        base = f"urn:einblick:{gateway}:{a['customer']}"
        measures: list[dict[str, str]] = [
            {"@type": _MEASURES[s]}
            if s in _MEASURES
            else {"@type": "dpv:TechnicalMeasure", "dct:description": s}
            for s in a["safeguards"]
        ]
        transport = a["transport"]
        if transport is not None and transport["tls"]:
            measures.append({"@type": "dpv:EncryptionInTransfer"})
        retention = a["retention"]
        processes.append(
            {
                "@id": f"{base}:grant:{a['grant']}",
                "@type": "dpv:Process",
                "dct:identifier": f"{a['customer']}/{a['grant']}",
                "dct:hasVersion": a["policy_version"],
                "dpv:hasPurpose": {
                    "@type": "dpv:Purpose",
                    "dct:description": [
                        {"@value": text, "@language": lang}
                        for lang, text in sorted(a["purpose"].items())
                    ],
                },
                "dpv:hasLegalBasis": {"@id": legal_basis_iri(a["legal_basis"])},
                "dpv:hasDataSubject": {
                    "@id": base,
                    "@type": "dpv:DataSubject",
                    "dpv:hasName": a["customer_name"],
                },
                "dpv:hasPersonalData": [
                    {
                        "@type": "dpv:PersonalData",
                        "dct:title": c["label"]["en"],
                        "dct:description": ", ".join(c["fields"]),
                    }
                    for c in a["categories"]
                ],
                "dpv:hasRecipient": {
                    "@id": f"urn:einblick:{gateway}:recipient:{a['recipient']}",
                    "@type": "dpv:Recipient",
                    "dpv:hasName": a["recipient_name"],
                },
                "dpv:hasTechnicalMeasure": measures,
                "dpv:hasStorageCondition": {
                    "@type": "dpv:StorageDuration",
                    "dct:description": (
                        f"content {retention.get('content_days') or 'kept'} days; "
                        f"entries {retention.get('entries_years') or 'kept'} years"
                    ),
                },
            }
        )
    # One default graph: a top-level "@id" beside "@graph" would make the processes a named
    # graph, which most RDF tools leave out of what they read by default.
    records = {
        "@id": f"urn:einblick:{gateway}:records",
        "dct:created": {"@value": data["generated_at"], "@type": "xsd:dateTime"},
        "dct:conformsTo": "GDPR Art. 30",
        "dct:hasPart": [{"@id": p["@id"]} for p in processes],
    }
    return {"@context": DPV_CONTEXT, "@graph": [records, *processes]}


def render_records(data: Records, fmt: str, lang: str) -> str:
    """``json``, ``csv``, ``jsonld`` or ``md`` (``html`` too, for printing)."""
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return records_csv(data, lang)
    if fmt == "jsonld":
        return orjson.dumps(records_jsonld(data), option=orjson.OPT_INDENT_2).decode() + "\n"
    doc = _document(data, lang)
    return render_md(doc) if fmt == "md" else render_html(doc, lang)
