"""A decision in plain words, for a customer who is not an engineer.

The text says what was shared with whom, for what purpose, on which legal basis, what was
altered and how, what was withheld and why, and which rule decided (grant id and the policy
version's short hash). It never quotes a message value: only names (fields, treatments,
recipient, purpose, legal basis, grant, device, reason), so the same situation always yields the
same text and the log can store each distinct text once. Array indices are folded
(``readings[3].value`` reads ``readings[].value``) for the same reason.

Field names are the device's keys, so the lists are bounded (``policies.listing`` caps how many
paths a decision lists and how long each is): a capped list says how many more fields there
were ("… and 7,981 more fields", the number written by Babel for the language), and a text never
exceeds ``MAX_TEXT_CHARS``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.lists import format_list
from babel.numbers import format_decimal

from policies.catalog import tr
from policies.compiler import CompiledPolicy
from policies.decision import REASON_CODES, Alteration, Decision, LegalBasis, Outcome, Reason
from policies.profiles import PROFILES
from policies.treatments import PROBLEMS

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "MAX_TEXT_CHARS",
    "TIME_UNITS",
    "count_text",
    "dynamic_msgids",
    "explain",
    "explain_under",
    "fold",
    "join",
    "legal_basis_text",
    "reason_text",
    "samples_text",
    "seconds_text",
    "treatment_text",
]

AGGREGATE_FUNCTIONS = ("mean", "min", "max", "sum", "count")
TIME_UNITS = ("second", "minute", "hour", "day")
TREATMENTS = ("pseudonymise", "round", "coarsen", "truncate", "aggregate", "keep")
_INDEX = re.compile(r"\[\d+\]")
# A last guard: with the path caps a text stays far below this; longer policy texts are cut.
MAX_TEXT_CHARS = 6_000


# Reasons for rows an earlier attempt may have delivered (gateway/messages/upstreams.py): the
# explanation must not say the recipient received nothing.
MAYBE_SENT = frozenset({"recipient_removed_maybe_sent"})


def _decided_by(lang: str, decision: Decision) -> str:
    """What decided: a grant of a version, the default deny of a version, a missing BIRTH; or
    nothing to name ("")."""
    code = decision.reason.code if decision.reason is not None else None
    if code == "policy_not_loaded":
        # No policy in force: a window closed after its policy stopped running names the
        # version it was collected under, which no longer decides.
        return ""
    if decision.grant and decision.policy_version:
        return tr(lang, "explain.rule", grant=decision.grant, version=decision.policy_version[:12])
    if code == "no_birth":
        # Not a grant's doing: the values cannot be read until the device's BIRTH is seen.
        return tr(lang, "explain.no_birth")
    if decision.policy_version:
        return tr(lang, "explain.default_deny", version=decision.policy_version[:12])
    return ""


# What a grant can be judged differently at two moments (``policies.moments``).
CLOCK_WHATS = ("validity", "consent", "hours")


def dynamic_msgids() -> tuple[str, ...]:
    """Every msgid the code builds from a name (reason codes, bases, units ...)."""
    ids = [f"reason.{code}" for code in REASON_CODES]
    ids += [f"basis.{basis.value}" for basis in LegalBasis]
    ids += [f"treatment.{name}" for name in TREATMENTS]
    ids += [f"unit.{unit}" for unit in TIME_UNITS]
    ids += [f"fn.{fn}" for fn in AGGREGATE_FUNCTIONS]
    ids += [f"problem.{problem}" for problem in PROBLEMS]
    ids += [f"what.{what}" for what in ("validity", "consent")]
    ids += [f"clock.{what}" for what in CLOCK_WHATS]
    ids += [f"dur.{n}" for n in ("seconds", "minutes", "hours", "days")]
    ids += [f"dur.one_{n}" for n in ("second", "minute", "hour", "day")]
    ids += [f"samples.{case}.{form}" for case in ("nom", "dat") for form in ("one", "other")]
    return tuple(ids)


def fold(paths: tuple[str, ...] | list[str]) -> list[str]:
    """Paths with array indices folded to ``[]``, duplicates dropped, order kept."""
    return list(dict.fromkeys(_INDEX.sub("[]", p) for p in paths))


def _field(lang: str, path: str, profile: str | None = None) -> str:
    """A field as the customer reads it: with the device's payload profile, its label and the
    path (``Standort (Breitengrad) [lat]``), else the path alone."""
    if profile is not None and not path.startswith("$"):
        known = PROFILES.get(profile)
        found = known.field(path) if known is not None else None
        if found is not None:
            return f"{found.labels.get(lang) or found.labels['en']} [{path}]"
    if path == "$payload":
        return tr(lang, "field.payload")
    if path == "$topic":
        return tr(lang, "field.topic")
    if path.startswith("$topic."):
        return tr(lang, "field.topic_level", name=path[7:])
    if path.startswith("$payload"):  # a body that is a JSON array: "$payload[].name"
        return tr(lang, "field.payload_items", path=path[len("$payload") :])
    return path


def join(lang: str, items: list[str], more: int = 0) -> str:
    """``a, b and c`` / ``a, b und c``; with ``more``: ``a, b and 7,981 more fields``."""
    if more:
        if more == 1:
            return tr(lang, "list.more_field", head=", ".join(items))
        return tr(lang, "list.more_fields", head=", ".join(items), n=count_text(lang, more))
    if len(items) <= 1:
        return "".join(items)
    return format_list(items, style="standard", locale=_locale(lang))


def count_text(lang: str, n: int) -> str:
    """``7.981`` / ``7,981``: a count as the language writes it (Babel's CLDR data)."""
    return format_decimal(n, locale="de" if lang == "de" else "en")


def _number(lang: str, text: str) -> str:
    """A number from the policy (``0.5``) as the language writes it (``0,5``), by Babel."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return format_decimal(value, locale=_locale(lang), decimal_quantization=False)


def _locale(lang: str) -> str:
    return "de" if lang == "de" else "en"


def samples_text(lang: str, n: int, case: str = "dat") -> str:
    """``1 Messwert`` / ``12 Messwerten`` / ``12 samples``: the count with its noun in the
    plural form CLDR gives for ``n`` (Babel), in the grammatical case the sentence needs."""
    form = "one" if Locale.parse(_locale(lang)).plural_form(n) == "one" else "other"
    return tr(lang, f"samples.{case}.{form}", n=count_text(lang, n))


def seconds_text(lang: str, text: str) -> str:
    """``"300 s"`` -> ``5 min`` / ``5 Minuten``; policy constants only."""
    try:
        seconds = float(text.split(maxsplit=1)[0])
    except (ValueError, IndexError):
        return text
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size and seconds % size == 0:
            if seconds == size:
                return tr(lang, f"dur.one_{unit}")
            return tr(lang, f"dur.{unit}s", n=f"{seconds / size:g}")
    return tr(lang, "dur.seconds", n=_number(lang, f"{seconds:g}"))


def treatment_text(lang: str, treatment: str, detail: str) -> str:
    """How a value was altered: ``auf 0,5 gerundet``, ``truncated to the minute``."""
    if treatment == "round":
        return tr(lang, "treatment.round", step=_number(lang, detail))
    if treatment == "coarsen":
        return tr(lang, "treatment.coarsen", grid=detail)
    if treatment == "truncate":
        return tr(lang, "treatment.truncate", unit=tr(lang, f"unit.{detail}"))
    if treatment == "aggregate":
        # "mean, max; 60 s" from a grant, "mean, max; 60 s; 12" from a window of 12 samples
        functions, _, rest = detail.partition(";")
        window, _, samples = rest.partition(";")
        names = [tr(lang, f"fn.{fn.strip()}") for fn in functions.split(",") if fn.strip()]
        text = tr(
            lang,
            "treatment.aggregate",
            functions=join(lang, names),
            window=seconds_text(lang, window.strip()),
        )
        if samples.strip().isdigit():
            text += " " + tr(
                lang, "treatment.aggregate_samples", samples=samples_text(lang, int(samples))
            )
        return text
    return tr(lang, f"treatment.{treatment}")


def legal_basis_text(lang: str, basis: LegalBasis) -> str:
    """``Einwilligung (Art. 6 Abs. 1 lit. a DSGVO)`` / ``consent (GDPR Art. 6(1)(a))``."""
    return tr(lang, f"basis.{basis.value}")


def reason_text(lang: str, reason: Reason) -> str:
    params = dict(reason.params)
    if reason.code == "clock_behind":
        what = params.get("what", "validity")
        what = what if what in CLOCK_WHATS else "validity"
        what = tr(lang, f"clock.{what}", grant=params.get("grant", "?"))
        return tr(lang, "reason.clock_behind", what=what)
    if reason.code in ("expired", "not_yet_valid"):
        what = params.get("what", "validity")
        return tr(lang, f"reason.{reason.code}", what=tr(lang, f"what.{what}"))
    if reason.code == "rate_limited":
        return tr(
            lang, "reason.rate_limited", interval=seconds_text(lang, params.get("interval", ""))
        )
    if reason.code == "aggregating":
        return tr(lang, "reason.aggregating", window=seconds_text(lang, params.get("window", "")))
    if reason.code == "summarised_elsewhere":
        return tr(
            lang,
            "reason.summarised_elsewhere",
            field=_field(lang, params.get("field", "")),
            window=seconds_text(lang, params.get("window", "")),
            grant=params.get("grant", ""),
        )
    if reason.code == "treatment_failed":
        return tr(
            lang,
            "reason.treatment_failed",
            field=_field(lang, params.get("field", "")),
            problem=tr(lang, f"problem.{params.get('problem', 'not_a_value')}"),
        )
    if reason.code == "too_few_samples":
        return tr(
            lang,
            "reason.too_few_samples",
            field=_field(lang, params.get("field", "")),
            count=samples_text(lang, int(params.get("count") or 0), "nom"),
            min=samples_text(lang, int(params.get("min") or 0), "dat"),
        )
    if reason.code == "out_of_range":
        return tr(lang, "reason.out_of_range", field=_field(lang, params.get("field", "")))
    defaults = {"hours": "", "condition": "", "fields": "", "error": "", "limit": ""}
    return tr(lang, f"reason.{reason.code}", **{**defaults, **params})


def _alterations(
    lang: str, altered: tuple[Alteration, ...], profile: str | None = None
) -> list[str]:
    out = []
    for alteration in altered:
        text = tr(
            lang,
            "explain.altered_item",
            field=_field(lang, _INDEX.sub("[]", alteration.path), profile),
            how=treatment_text(lang, alteration.treatment, alteration.detail),
        )
        out.append(text)
    return list(dict.fromkeys(out))


def explain(
    decision: Decision,
    lang: str,
    *,
    recipient_name: str | None = None,
    device_name: str | None = None,
    profile: str | None = None,
) -> str:
    """Render ``decision`` in ``lang`` ("de" or "en"); names default to the ids; with the
    device's payload ``profile`` fields carry their labels (``policies/profiles.py``)."""
    lang = lang if lang in ("de", "en") else "en"
    if decision.customer is None:
        why = decision.reason or Reason("unknown_device")
        if why.code not in ("unknown_device", "flooding", "too_large"):
            # No device known (the failure came before the lookup): say what did happen.
            return tr(lang, "explain.withheld_unattributed", reason=reason_text(lang, why))
        return tr(lang, "explain.unknown_device", reason=reason_text(lang, why))
    device = device_name or decision.device or "?"
    recipient = recipient_name or decision.recipient or ""
    stream = decision.stream or ""
    parts: list[str] = []
    purpose = decision.purpose.get(lang) or next(iter(decision.purpose.values()), "")
    basis = legal_basis_text(lang, decision.legal_basis) if decision.legal_basis else ""
    if decision.outcome is Outcome.WITHHELD:
        reason = reason_text(lang, decision.reason or Reason("internal_error"))
        # Withheld before its stream was known (flooding, too large), or a queued release
        # withheld without its policy: no stream to name.
        if decision.recipient is None:
            key = "explain.withheld_all" if stream else "explain.withheld_all_no_stream"
            parts.append(tr(lang, key, device=device, stream=stream, reason=reason))
        else:
            key = "explain.withheld" if stream else "explain.withheld_no_stream"
            if decision.reason is not None and decision.reason.code in MAYBE_SENT:
                key = "explain.withheld_maybe_sent"  # "received nothing" could be false
            parts.append(
                tr(lang, key, device=device, stream=stream, recipient=recipient, reason=reason)
            )
            if purpose and basis:
                parts.append(tr(lang, "explain.would_be", purpose=purpose, basis=basis))
    else:
        parts.append(
            tr(
                lang,
                "explain.sent",
                device=device,
                stream=stream,
                recipient=recipient,
                purpose=purpose,
                basis=basis,
            )
        )
        if decision.opaque:
            parts.append(tr(lang, "explain.opaque"))
        shared = [
            _field(lang, p, profile)
            for p in fold(decision.shared)
            if not decision.opaque or p != "$payload"
        ]
        omitted = decision.omitted
        if shared:
            more = omitted.get("shared", 0)
            parts.append(tr(lang, "explain.shared", fields=join(lang, shared, more)))
        altered = _alterations(lang, decision.altered, profile)
        if altered:
            items = "; ".join(altered)
            more = omitted.get("altered", 0)
            if more:
                items = join(lang, [items], more)
            parts.append(tr(lang, "explain.altered", items=items))
    withheld = [_field(lang, p, profile) for p in fold(decision.withheld)]
    more_withheld = decision.omitted.get("withheld", 0)
    if (withheld and decision.outcome is not Outcome.WITHHELD) or (
        withheld and (withheld != [tr(lang, "field.payload")] or more_withheld)
    ):
        parts.append(tr(lang, "explain.kept_here", fields=join(lang, withheld, more_withheld)))
    problems = [reason_text(lang, r) for r in decision.field_reasons.values()]
    problems = list(dict.fromkeys(p for p in problems if p))
    if problems and decision.outcome is not Outcome.WITHHELD:
        items = "; ".join(problems)
        more = decision.omitted.get("field_reasons", 0)
        if more:
            items = join(lang, [items], more)
        parts.append(tr(lang, "explain.problems", items=items))
    if decision.raised_by and decision.outcome is not Outcome.WITHHELD:
        grants = join(lang, [tr(lang, "explain.grant_name", grant=g) for g in decision.raised_by])
        parts.append(tr(lang, "explain.raised", grants=grants))
    parts.append(_decided_by(lang, decision))
    text = " ".join(p for p in parts if p)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 1] + "…"
    return text


def explain_under(policy: CompiledPolicy | None, decision: Decision, lang: str) -> str:
    """``explain`` with the names ``policy`` gives the decision's recipient and device (and the
    device's payload profile); ids where it names none."""
    device = policy.device(decision.device) if policy and decision.device else None
    return explain(
        decision,
        lang,
        recipient_name=policy.recipients.get(decision.recipient or "") if policy else None,
        device_name=device.name if device else None,
        profile=device.profile if device else None,
    )
