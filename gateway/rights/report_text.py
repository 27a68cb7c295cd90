"""The customer's report in words: the data of ``build_report`` as a ``Document`` in German
or English (dates in the customer's time zone, numbers and lists by Babel, CLDR plurals).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime

from gateway.locale import LOCALES, join, number, tr
from gateway.rights.markup import Block, Document, Table
from gateway.rights.report_model import Report
from policies.decision import LegalBasis, Reason
from policies.explain import legal_basis_text, reason_text, treatment_text

__all__ = ["document"]


def _when(lang: str, iso: str | None, zone: ZoneInfo) -> str:
    if iso is None:
        return "—"
    return format_datetime(
        datetime.fromisoformat(iso),
        "dd.MM.yyyy HH:mm" if lang == "de" else "yyyy-MM-dd HH:mm",
        tzinfo=zone,
        locale=LOCALES.get(lang, LOCALES["en"]),
    )


def _n(lang: str, n: int) -> str:
    return number(lang, n)


def _plural(lang: str, n: int) -> str:
    """``one`` or ``other``: the CLDR plural form of ``n`` in ``lang`` (Babel), so a log of one
    entry reads "der eine Eintrag", not "alle 1 Einträge"."""
    return (
        "one" if Locale.parse("de" if lang == "de" else "en").plural_form(n) == "one" else "other"
    )


def _how(lang: str, treatment: str, detail: str) -> str:
    if treatment == "keep":
        return tr(lang, "report.unchanged")
    return treatment_text(lang, treatment, detail)


def _key(purpose: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(purpose.items()))


def _basis(lang: str, basis: str) -> str:
    try:
        return legal_basis_text(lang, LegalBasis(basis))
    except ValueError:
        return basis


def document(data: Report, lang: str, *, portal: bool = False) -> Document:
    """The report as sections of paragraphs, tables and lists, in ``lang``.

    ``portal``: read by the customer in the portal, who cannot run commands on the box — how to
    check the report and use their rights then points to the portal's own pages, not to
    ``einblick export``, ``consent withdraw`` or ``forget`` (which only the installer can run)."""
    where = ".portal" if portal else ""
    zone = ZoneInfo(data["timezone"])
    devices = {d["id"]: d["name"] for d in data["devices"]}
    names = {r["id"]: r["name"] for r in data["recipients"]}

    def device(d: str) -> str:
        return str(devices.get(d, d))

    sections: list[tuple[str, list[Block]]] = []
    period = data["period"]
    intro: list[Block] = [
        tr(
            lang,
            "report.intro",
            name=data["name"],
            gateway=data["gateway"],
            generated=_when(lang, data["generated_at"], zone),
        ),
        tr(
            lang,
            "report.period",
            first=_when(lang, period["first"], zone),
            last=_when(lang, period["last"], zone),
        )
        if period["first"]
        else tr(lang, "report.period.empty"),
    ]
    sections.append((tr(lang, "report.section.summary"), intro))

    v = data["verification"]
    if v["ok"]:
        proof = tr(
            lang,
            f"report.verify.ok.{_plural(lang, v['entries'])}",
            entries=_n(lang, v["entries"]),
            checkpoints=tr(
                lang,
                f"report.checkpoints.{_plural(lang, v['checkpoints'])}",
                n=_n(lang, v["checkpoints"]),
            ),
            keys=", ".join(v["keys"]) or "—",
        )
    else:
        proof = tr(
            lang,
            "report.verify.failed",
            problem="; ".join([p for p in [v["problem"], *v["key_problems"]] if p]),
        )
    blocks: list[Block] = [proof]
    if v["unsigned"]:
        blocks.append(tr(lang, "report.verify.unsigned", n=_n(lang, v["unsigned"])))
    if not v["pinned"]:
        blocks.append(tr(lang, "report.verify.unpinned"))
    blocks.append(tr(lang, f"report.verify.how{where}", customer=data["customer"]))
    sections.append((tr(lang, "report.section.proof"), blocks))

    rows = [
        [
            d["name"],
            d["id"],
            _n(lang, d["shared"] + d["altered"]),
            _n(lang, d["withheld"]),
        ]
        for d in data["devices"]
    ]
    sections.append(
        (
            tr(lang, "report.section.devices"),
            [
                Table(
                    [
                        tr(lang, "report.col.device"),
                        tr(lang, "report.col.id"),
                        tr(lang, "report.col.passed_on"),
                        tr(lang, "report.col.withheld"),
                    ],
                    rows,
                )
                if rows
                else tr(lang, "report.none")
            ],
        )
    )

    blocks = []
    for r in data["recipients"]:
        blocks.append(f"**{r['name']}**")
        lines = []
        for g in r["grants"]:
            lines.append(
                tr(
                    lang,
                    "report.grant",
                    grant=g["id"],
                    purpose=g["purpose"].get(lang) or next(iter(g["purpose"].values()), ""),
                    basis=_basis(lang, g["legal_basis"]),
                )
            )
        if r["messages"]:
            lines.append(
                tr(
                    lang,
                    "report.received" if r["messages"] != 1 else "report.received.one",
                    n=_n(lang, r["messages"]),
                    devices=join(lang, [device(d) for d in r["devices"]]),
                    last=_when(lang, r["last"], zone),
                )
            )
        else:
            lines.append(tr(lang, "report.received.none"))
        # Passed on under another purpose or legal basis than the current grants state (the
        # policy changed since): each as its entries recorded it, so none reads as the other.
        current = {(g["id"], _key(g["purpose"]), g["legal_basis"]) for g in r["grants"]}
        if any(
            (u["grant"], _key(u["purpose"]), u["legal_basis"]) not in current for u in r["under"]
        ):
            for u in r["under"]:
                lines.append(
                    tr(
                        lang,
                        "report.under",
                        n=_n(lang, u["count"]),
                        grant=u["grant"] or "?",
                        purpose=u["purpose"].get(lang) or next(iter(u["purpose"].values()), ""),
                        basis=_basis(lang, u["legal_basis"] or "?"),
                    )
                )
        if r["withheld"]:
            lines.append(tr(lang, "report.recipient.withheld", n=_n(lang, r["withheld"])))
        blocks.append(lines)
        if r["fields"]:
            blocks.append(
                Table(
                    [
                        tr(lang, "report.col.field"),
                        tr(lang, "report.col.how"),
                        tr(lang, "report.col.times"),
                    ],
                    [
                        [f["field"], _how(lang, f["treatment"], f["detail"]), _n(lang, f["count"])]
                        for f in r["fields"]
                    ],
                )
            )
    sections.append((tr(lang, "report.section.recipients"), blocks or [tr(lang, "report.none")]))

    lines = []
    for item in data["never_shared"]:
        if item["nothing_left"]:
            lines.append(tr(lang, "report.never.device", device=device(item["device"])))
        elif item["fields"]:
            lines.append(
                tr(
                    lang,
                    "report.never.fields",
                    device=device(item["device"]),
                    fields=join(lang, item["fields"]),
                )
            )
    blocks = [tr(lang, "report.never.intro"), lines or [tr(lang, "report.none")]]
    if data["withheld"]:
        blocks.append(tr(lang, "report.withheld.intro"))
        blocks.append(
            Table(
                [tr(lang, "report.col.reason"), tr(lang, "report.col.times")],
                [
                    [reason_text(lang, Reason(w["reason"], w["params"])), _n(lang, w["count"])]
                    for w in data["withheld"]
                ],
            )
        )
    sections.append((tr(lang, "report.section.never"), blocks))

    lines = []
    for c in data["consents"]:
        key = f"report.consent.{c['action']}"
        lines.append(
            tr(
                lang,
                key,
                grant=c["grant"] or "",
                recipient=""
                if c["recipient"] is None
                else names.get(c["recipient"], c["recipient"]),
                # Blank once the customer was forgotten: the name went with its names documents.
                by=c["by"] or tr(lang, "report.name_erased"),
                at=_when(lang, c["at"], zone),
            )
            + (
                tr(lang, "report.consent.until", until=_when(lang, c["until"], zone))
                if c["until"]
                else ""
            )
        )
    sections.append((tr(lang, "report.section.consents"), [lines or tr(lang, "report.none")]))

    blocks = []
    for e in data["erasures"]:
        blocks.append(e["text"]["de" if lang == "de" else "en"])
        acks = []
        for n in e["notices"]:
            state = (
                tr(lang, "report.ack.done", at=_when(lang, n["acknowledged_at"], zone))
                if n["acknowledged_at"]
                else tr(lang, "report.ack.delivered" if n["delivered"] else "report.ack.queued")
            )
            acks.append(f"{names.get(n['recipient'], n['recipient'])}: {state}")
        if acks:
            blocks.append(acks)
    sections.append((tr(lang, "report.section.erasures"), blocks or [tr(lang, "report.none")]))
    sections.append((tr(lang, "report.section.rights"), [tr(lang, f"report.rights{where}")]))
    return Document(tr(lang, "report.title", name=data["name"]), sections)
