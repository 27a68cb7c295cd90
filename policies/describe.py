""" "Wer bekommt was, und warum": a whole policy in plain words, grant by grant.

Shown by ``einblick policy describe`` and the TUI's policy view. Every sentence comes from the
message catalogs; names and dates come from the policy, never from device messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, format_timedelta

from policies.catalog import tr
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.explain import join, legal_basis_text, samples_text, seconds_text, treatment_text
from policies.model import HELD_ON_TIME_S, GrantSpec
from policies.treatment_specs import CoarsenSpec, RoundSpec, Treatment, TruncateSpec

__all__ = ["describe", "grant_fields", "what_is_sent"]


def _when(lang: str, moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return tr(lang, "describe.open")
    # CLDR's date and time for the language (Babel), in the policy's time zone.
    local = moment.astimezone(zone)
    return f"{format_date(local, 'medium', locale=lang)} {format_time(local, 'short', locale=lang)}"


def _treatment(lang: str, treatment: Treatment) -> str:
    if treatment == "keep":
        return tr(lang, "treatment.keep")
    if treatment == "pseudonymise":
        return tr(lang, "treatment.pseudonymise")
    if isinstance(treatment, RoundSpec):
        return treatment_text(lang, "round", f"{treatment.round:g}")
    if isinstance(treatment, CoarsenSpec):
        return treatment_text(lang, "coarsen", f"{treatment.coarsen.grid_m:g} m")
    if isinstance(treatment, TruncateSpec):
        return treatment_text(lang, "truncate", treatment.truncate)
    raise AssertionError(f"unexpected treatment {treatment!r}")


def _field(lang: str, path: str) -> str:
    if path == "$payload":
        return tr(lang, "field.payload")
    if path == "*":
        return tr(lang, "describe.star")
    return path


def _overlapping(paths: list[str]) -> bool:
    """True when one path names a field another names too (``*`` beside ``driver.name``,
    ``driver`` beside ``driver.name``): then the specificity rule decides, and we say so."""

    def levels(path: str) -> list[str]:
        return [segment.split("[", 1)[0] for segment in path.split(".")]

    for index, a in enumerate(paths):
        for b in paths[index + 1 :]:
            la, lb = levels(a), levels(b)
            if all(x == y or "*" in (x, y) for x, y in zip(la, lb, strict=False)):
                return True
    return False


def _grant(lang: str, policy: CompiledPolicy, grant: CompiledGrant, zone: ZoneInfo) -> list[str]:
    spec = grant.spec
    lines = [tr(lang, "describe.grant", grant=grant.id, recipient=grant.recipient_name)]
    lines.append(tr(lang, "describe.purpose", purpose=grant.purpose.get(lang, "")))
    lines.append(tr(lang, "describe.basis", basis=legal_basis_text(lang, grant.legal_basis)))
    names = [d.name for d in policy.devices if d.id in grant.devices]
    streams = sorted(grant.streams) if grant.streams is not None else []
    lines.append(
        tr(
            lang,
            "describe.covers",
            devices=join(lang, names) or tr(lang, "describe.none"),
            streams=join(lang, streams) if streams else tr(lang, "describe.all_streams"),
        )
    )
    lines += what_is_sent(lang, grant)
    levels = [
        f"{tr(lang, 'field.topic_level', name=name)} {tr(lang, 'treatment.' + how)}"
        for name, how in grant.topic_levels.items()
    ]
    topic = tr(lang, "describe.topic", template=grant.template.template)
    if levels:
        topic += " " + tr(lang, "describe.topic_levels", items="; ".join(levels))
    lines.append(topic)
    if grant.valid_from or grant.valid_until:
        lines.append(
            tr(
                lang,
                "describe.valid",
                start=_when(lang, grant.valid_from, zone),
                end=_when(lang, grant.valid_until, zone),
            )
        )
    if grant.consent is not None:
        consent = tr(
            lang,
            "describe.consent",
            who=grant.consent.given_by,
            when=_when(lang, grant.consent.given_at, zone),
            until=_when(lang, grant.consent.until, zone),
        )
        if grant.consent.reference:
            consent += " " + tr(lang, "describe.consent_ref", ref=grant.consent.reference)
        lines.append(consent)
    if spec.hours:
        lines.append(tr(lang, "describe.hours", hours=", ".join(spec.hours), tz=policy.timezone))
    if spec.release_unit is not None:
        # The hold (gateway/messages/release.py) and how it meets the hours
        # (gateway/messages/sendtime_rules.py): both say what the gateway does.
        lines.append(tr(lang, f"describe.release.{spec.release_unit}", tz=policy.timezone))
        if spec.hours:
            grace = format_timedelta(timedelta(seconds=HELD_ON_TIME_S), locale=lang)
            lines.append(tr(lang, "describe.release_after_hours", grace=grace))
    if grant.conditions:
        lines.append(
            tr(lang, "describe.when", conditions=join(lang, [c.text for c in grant.conditions]))
        )
    if grant.rate_limit:
        lines.append(tr(lang, "describe.rate", interval=_interval(lang, grant.rate_limit)))
    return ["", *lines[:1], *("  " + line for line in lines[1:])]


def what_is_sent(lang: str, grant: CompiledGrant) -> list[str]:
    """What a grant sends and how, in the customer's words: the lines ``describe`` writes for it
    and "who gets what" shows (the TUI, the portal), so the two can never say different things."""
    lines: list[str] = []
    spec = grant.spec
    if grant.opaque:
        lines.append(tr(lang, "describe.opaque"))
    elif grant.aggregate is not None:
        window = f"{grant.aggregate.window:g} s"
        items = [
            f"{path} {treatment_text(lang, 'aggregate', ', '.join(fns) + '; ' + window)}"
            for path, fns in grant.aggregate.fields.items()
        ]
        lines.append(tr(lang, "describe.aggregate", items="; ".join(items)))
        lines.append(
            tr(lang, "describe.min_count", min=samples_text(lang, grant.aggregate.min_count))
        )
    elif spec.fields:
        items = []
        for path, treatment in spec.fields.items():
            if isinstance(treatment, CoarsenSpec):
                label = f"{path}/{treatment.coarsen.lon}"
            else:
                label = _field(lang, path)
            items.append(f"{label} {_treatment(lang, treatment)}")
        lines.append(tr(lang, "describe.fields", items="; ".join(items)))
        if _overlapping(list(spec.fields)):
            lines.append(tr(lang, "describe.specific"))
    else:
        lines.append(tr(lang, "describe.nothing"))
    if grant.overlaps:
        names = [tr(lang, "explain.grant_name", grant=other) for other in grant.overlaps]
        lines.append(tr(lang, "describe.overlap", grants=join(lang, names)))
    return lines


def grant_fields(spec: GrantSpec) -> tuple[str, ...]:
    """Every field path a grant can send, for the views that list them ("who gets what"):
    ``$payload`` for a whole or opaque body, the summarised fields of an aggregate, and both
    halves of a coarsened position (the grant names only the latitude key)."""
    if spec.payload == "opaque":
        return ("$payload",)
    if spec.aggregate is not None:
        return tuple(spec.aggregate.fields)
    out: list[str] = []
    for path, treatment in spec.fields.items():
        out.append(path)
        if isinstance(treatment, CoarsenSpec):
            head, _, _ = path.rpartition(".")
            out.append(f"{head}.{treatment.coarsen.lon}" if head else treatment.coarsen.lon)
    return tuple(out)


def _interval(lang: str, seconds: float) -> str:
    return seconds_text(lang, f"{seconds:g} s")


def describe(policy: CompiledPolicy, lang: str) -> str:
    """The whole policy in plain words (``de`` or ``en``), grant by grant."""
    lang = lang if lang in ("de", "en") else "en"
    zone = ZoneInfo(policy.timezone)
    lines = [
        tr(lang, "describe.title", name=policy.name),
        tr(lang, "describe.version", version=policy.short_version, tz=policy.timezone),
        tr(lang, "describe.intro"),
        "",
        tr(lang, "describe.devices"),
    ]
    for device in policy.devices:
        lines.append(
            "  • "
            + tr(
                lang,
                "describe.device",
                name=device.name,
                id=device.id,
                kind=device.kind,
                streams=join(lang, list(device.streams)),
            )
        )
    if not policy.grants:
        lines += ["", tr(lang, "describe.no_grants")]
    for grant in policy.grants:
        lines += _grant(lang, policy, grant, zone)
    lines += ["", tr(lang, "describe.footer")]
    return "\n".join(lines) + "\n"
