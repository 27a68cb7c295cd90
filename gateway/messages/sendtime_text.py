"""The words of send-time entries (gateway/messages/sendtime.py), German and English.

Each text is the first sentence (or the whole) of an entry the send-time check writes when a
queued row may not leave as it was decided; the decision's own explanation follows where the
check says so. Each names what happened while the row waited, never a message value.
``change_text`` writes the whole text of an entry after overlapping grants began or stopped to
apply (policies/onset.py), naming each one: an entry that named one of two would be a sentence
with a gap the customer cannot see. Texts name fields, never values, so entries decided alike read
alike: ``explain_key`` and ``change_key`` say which, for the send-time check's text cache.
"""

from __future__ import annotations

from policies.decision import Decision, Reason
from policies.engine import Engine
from policies.explain import join, reason_text
from policies.onset import Change, Onset, Stop

__all__ = [
    "BEGAN",
    "BEGAN_UNDECIDED",
    "BEGAN_WITHHELD",
    "CAUSES",
    "HOURS_ENDED",
    "MANY",
    "MANY_CLAUSES",
    "MANY_UNDECIDED",
    "MANY_WITHHELD",
    "MAYBE_SENT",
    "MAYBE_SENT_BEFORE",
    "NOT_SUMMARISED",
    "REDECIDED",
    "STOPPED",
    "STOPPED_WITHHELD",
    "STOP_CAUSES",
    "UNDECIDED",
    "WHY_CHANGED",
    "WHY_HOURS",
    "WITHHELD",
    "change_key",
    "change_text",
    "entry_texts",
    "explain_key",
    "explained_size",
]

# The first sentence of a send-time entry; the decision's own explanation follows.
REDECIDED = {
    "de": "Beim Versand nach Version {version} der Richtlinie neu entschieden, weil sie sich "
    "seit der Entscheidung geändert hat.",
    "en": "Re-decided at send time under version {version} of the policy, because it had "
    "changed since the decision.",
}
WITHHELD = {
    "de": "Beim Versand zurückgehalten, weil {reason}.",
    "en": "Withheld at send time, because {reason}.",
}
# The engine's own words for hours ("the message came outside the allowed hours") would be false
# here: the message came inside them; the hours ended while it waited. Only for a row decided
# inside the hours its grant has now: after a new version narrowed them, a row decided outside
# the new hours gets the engine's words, which are then true. "Before it could be sent", not
# "before the recipient could be reached": the wait may also have been a backlog, or a disk
# refusing on this side, while the recipient was there.
HOURS_ENDED = {
    "de": "Beim Versand zurückgehalten, weil die erlaubten Zeiten der Freigabe „{grant}“ "
    "({hours}) vorbei waren, bevor sie an {recipient} gesendet werden konnte. Entschieden wurde "
    "die Nachricht innerhalb dieser Zeiten; sie ging an niemanden.",
    "en": "Withheld at send time, because the allowed hours of grant '{grant}' ({hours}) had "
    "ended before it could be sent to {recipient}. The message was decided inside those hours; "
    "it went to no one.",
}
# A row an earlier attempt may have delivered: published, and its acknowledgement lost with its
# connection, or published by a forwarder (or a run) before this one. "It went to no one" and
# "received nothing" could be false of it, so its entry says what is known. {why}: WHY_*, or the
# reason's own words.
MAYBE_SENT = {
    "de": "Beim Versand zurückgehalten, weil {why}. Ein früherer Versuch, sie an {recipient} zu "
    "senden, blieb womöglich unbestätigt (die Verbindung endete oder das Gateway startete neu, "
    "bevor die Bestätigung kam); sie kann dort also einmal angekommen sein. Erneut gesendet wird "
    "sie nicht.",
    "en": "Withheld at send time, because {why}. An earlier attempt to send it to {recipient} may "
    "have gone unconfirmed (its connection ended, or the gateway restarted, before the "
    "acknowledgement came), so it may have arrived there once. It is not sent again.",
}
# The same, for a row decided again that leaves now: the recipient may hold both versions.
MAYBE_SENT_BEFORE = {
    "de": "Ein früherer Versuch, sie wie zuvor entschieden zu senden, blieb womöglich "
    "unbestätigt; die frühere Fassung kann {recipient} also ebenfalls einmal erreicht haben.",
    "en": "An earlier attempt to send it as decided before may have gone unconfirmed, so that "
    "version may have reached {recipient} once as well.",
}
WHY_HOURS = {
    "de": "die erlaubten Zeiten der Freigabe „{grant}“ ({hours}) vorbei waren",
    "en": "the allowed hours of grant '{grant}' ({hours}) had ended",
}
WHY_CHANGED = {
    "de": "sich nach der Entscheidung geändert hat, welche Freigaben für {recipient} gelten "
    "({changes})",
    "en": "the grants that apply for {recipient} changed after the decision ({changes})",
}
# A grant for the same recipient began to apply while the row waited (policies/onset.py).
BEGAN = {
    "de": "Beim Versand neu entschieden: Nach der Entscheidung begann die Freigabe „{grant}“ "
    "für {recipient} zu gelten ({cause}), und wo beide Freigaben gelten, geht jedes Feld in "
    "der schützenderen ihrer Behandlungen hinaus.",
    "en": "Re-decided at send time: after the decision, grant '{grant}' for {recipient} began "
    "to apply ({cause}), and where both grants apply each field leaves in the more protective "
    "of their treatments.",
}
BEGAN_WITHHELD = {
    "de": "Beim Versand zurückgehalten: Nach der Entscheidung begann die Freigabe „{grant}“ "
    "für {recipient} zu gelten ({cause}), und wo beide Freigaben gelten, darf nichts von "
    "dieser Weitergabe hinaus. Sie ging an niemanden.",
    "en": "Withheld at send time: after the decision, grant '{grant}' for {recipient} began to "
    "apply ({cause}), and where both grants apply nothing of this release may leave. It went "
    "to no one.",
}
# The row could not be decided again with the grant that began to apply: {why} is UNDECIDED's.
BEGAN_UNDECIDED = {
    "de": "Beim Versand zurückgehalten: Nach der Entscheidung begann die Freigabe „{grant}“ "
    "für {recipient} zu gelten ({cause}), und diese Weitergabe ließ sich nicht mit beiden "
    "Freigaben neu entscheiden: {why}. Sie ging an niemanden.",
    "en": "Withheld at send time: after the decision, grant '{grant}' for {recipient} began to "
    "apply ({cause}), and this release could not be decided again with both grants: {why}. It "
    "went to no one.",
}
UNDECIDED = {
    "de": {
        "no_source": "die Nachricht des Geräts wurde mit ihr nicht aufbewahrt",
        "no_birth": "eine Sparkplug-Nachricht wird anhand der Geburtsnachricht ihres Geräts "
        "gelesen, und die wird mit ihr nicht aufbewahrt",
    },
    "en": {
        "no_source": "the device's message was not kept with it",
        "no_birth": "a Sparkplug message is read against its device's birth message, which is "
        "not kept with it",
    },
}
# The engine's "being collected" would be false here: the message was decided before the
# summarising grant applied, and is not added to its window afterwards.
NOT_SUMMARISED = {
    "de": "„{grant}“ gibt diese Felder nur als Zusammenfassung weiter; diese Nachricht wurde "
    "entschieden, bevor die Freigabe galt, und ist in keiner Zusammenfassung enthalten.",
    "en": "'{grant}' passes these fields on only as a summary; this message was decided before "
    "that grant applied and is part of no summary.",
}
CAUSES = {
    "de": {
        "hours": "ihre erlaubten Zeiten, {hours}, begannen",
        "validity": "ihre Gültigkeit begann",
        "withdrawn": "die Einwilligung wurde wieder erteilt",
        "objected": "der Widerspruch wurde zurückgenommen",
        "restricted": "die Einschränkung wurde aufgehoben",
        "released": "sie wird nicht mehr zurückgehalten",  # a hold of another kind ended
    },
    "en": {
        "hours": "its allowed hours, {hours}, began",
        "validity": "its validity began",
        "withdrawn": "consent to it was given again",
        "objected": "the objection to it was lifted",
        "restricted": "its restriction was lifted",
        "released": "it is no longer held back",  # a hold of another kind ended
    },
}
# A grant for the same recipient that applied at the decision stopped applying while the row
# waited (policies/onset.py): the row may be more protective than the current policy.
STOPPED = {
    "de": "Beim Versand neu entschieden: Nach der Entscheidung endete die Geltung der Freigabe "
    "„{grant}“ für {recipient} ({cause}), und jedes Feld geht so hinaus, wie es die weiterhin "
    "geltenden Freigaben vorsehen.",
    "en": "Re-decided at send time: after the decision, grant '{grant}' for {recipient} stopped "
    "applying ({cause}), and each field leaves as the grants that still apply give it.",
}
STOPPED_WITHHELD = {
    "de": "Beim Versand zurückgehalten: Nach der Entscheidung endete die Geltung der Freigabe "
    "„{grant}“ für {recipient} ({cause}), und nach den weiterhin geltenden Freigaben darf "
    "nichts von dieser Weitergabe hinaus. Sie ging an niemanden.",
    "en": "Withheld at send time: after the decision, grant '{grant}' for {recipient} stopped "
    "applying ({cause}), and under the grants that still apply nothing of this release may "
    "leave. It went to no one.",
}
STOP_CAUSES = {
    "de": {
        "hours": "ihre erlaubten Zeiten, {hours}, endeten",
        "validity": "ihre Gültigkeit endete",
        "consent": "die Einwilligung, auf der sie beruht, lief ab",
        "withdrawn": "die Einwilligung wurde widerrufen",
        "objected": "gegen sie wurde Widerspruch eingelegt",
        "restricted": "ihre Verarbeitung wurde eingeschränkt",
        "held": "sie wird zurückgehalten",  # a hold of another kind
    },
    "en": {
        "hours": "its allowed hours, {hours}, ended",
        "validity": "its validity ended",
        "consent": "the consent it rests on expired",
        "withdrawn": "consent to it was withdrawn",
        "objected": "an objection to it was raised",
        "restricted": "its processing was restricted",
        "held": "it is held back",  # a hold of another kind
    },
}


# Several grants for the recipient began or stopped to apply while the row waited: one sentence
# names each, with its cause (MANY_CLAUSES), in a Babel-formatted list.
MANY = {
    "de": "Beim Versand neu entschieden: Nach der Entscheidung änderte sich, welche Freigaben "
    "für {recipient} gelten: {changes}. Jedes Feld geht in der schützendsten Behandlung hinaus, "
    "die ihm eine der jetzt geltenden Freigaben gibt.",
    "en": "Re-decided at send time: after the decision, the grants that apply for {recipient} "
    "changed: {changes}. Each field leaves in the most protective treatment any grant that "
    "applies now gives it.",
}
MANY_WITHHELD = {
    "de": "Beim Versand zurückgehalten: Nach der Entscheidung änderte sich, welche Freigaben "
    "für {recipient} gelten: {changes}. Nach den jetzt geltenden Freigaben darf nichts von "
    "dieser Weitergabe hinaus. Sie ging an niemanden.",
    "en": "Withheld at send time: after the decision, the grants that apply for {recipient} "
    "changed: {changes}. Under the grants that apply now nothing of this release may leave. It "
    "went to no one.",
}
MANY_UNDECIDED = {
    "de": "Beim Versand zurückgehalten: Nach der Entscheidung änderte sich, welche Freigaben "
    "für {recipient} gelten: {changes}. Diese Weitergabe ließ sich nicht mit den jetzt "
    "geltenden Freigaben neu entscheiden: {why}. Sie ging an niemanden.",
    "en": "Withheld at send time: after the decision, the grants that apply for {recipient} "
    "changed: {changes}. This release could not be decided again with the grants that apply "
    "now: {why}. It went to no one.",
}
MANY_CLAUSES = {
    "de": {
        "began": "„{grant}“ gilt seitdem ({cause})",
        "stopped": "„{grant}“ gilt nicht mehr ({cause})",
    },
    "en": {
        "began": "'{grant}' began to apply ({cause})",
        "stopped": "'{grant}' stopped applying ({cause})",
    },
}


def change_text(
    engine: Engine,
    decision: Decision,
    named: str,
    changes: tuple[Change, ...],
    *,
    replaced: bool,
    then: str,
    lang: str,
) -> str:
    """The entry's text after ``changes`` to the grants applying for the recipient ``named``:
    ``replaced``, what they release now leaves; else nothing leaves, and ``then`` says what
    follows the lead (sendtime.py's ``_Outcome``). One grant that began has its own sentence,
    one that stopped too (``_stopped``); several are listed, each with its cause."""
    if len(changes) == 1 and isinstance(changes[0], Stop):
        return _stopped(engine, decision, named, changes[0], replaced=replaced, lang=lang)
    if len(changes) == 1:
        (onset,) = changes
        assert isinstance(onset, Onset)
        fields = {"grant": onset.grant.id, "recipient": named, "cause": _began_cause(onset, lang)}
        words = (BEGAN, BEGAN_WITHHELD, BEGAN_UNDECIDED)
    else:
        fields = {"recipient": named, "changes": join(lang, _clauses(changes, lang))}
        words = (MANY, MANY_WITHHELD, MANY_UNDECIDED)
    if not replaced and then in UNDECIDED[lang]:
        return words[2][lang].format(**fields, why=UNDECIDED[lang][then])
    lead = (words[0] if replaced else words[1])[lang].format(**fields)
    began = [c.grant.id for c in changes if isinstance(c, Onset)]
    if replaced:
        # "only as a summary" must not read as "in its summary": said of each grant that began
        summarised = {
            str(r.params.get("grant"))
            for r in decision.field_reasons.values()
            if r.code == "summarised_elsewhere"
        }
        notes = [NOT_SUMMARISED[lang].format(grant=g) for g in began if g in summarised]
        return " ".join([lead, engine.explain(decision, lang), *notes])
    if then == "summary":
        return " ".join([lead, *(NOT_SUMMARISED[lang].format(grant=g) for g in began)])
    if then == "explain":
        return f"{lead} {engine.explain(decision, lang)}"
    return lead


def _why(
    grant: str,
    reason: Reason,
    named: str,
    changes: tuple[Change, ...],
    *,
    inside: bool,
    lang: str,
) -> str:
    """Why a row ``MAYBE_SENT`` speaks of is withheld, in a clause."""
    if changes:
        return WHY_CHANGED[lang].format(
            recipient=named, changes=join(lang, _clauses(changes, lang))
        )
    if reason.code == "outside_hours" and inside:
        hours = reason.params.get("hours", "")
        return WHY_HOURS[lang].format(grant=grant, hours=hours)
    return reason_text(lang, reason)


def _clauses(changes: tuple[Change, ...], lang: str) -> list[str]:
    """Each grant that began or stopped to apply, with its cause (``MANY_CLAUSES``)."""
    return [
        MANY_CLAUSES[lang]["began"].format(grant=c.grant.id, cause=_began_cause(c, lang))
        if isinstance(c, Onset)
        else MANY_CLAUSES[lang]["stopped"].format(grant=c.grant.id, cause=_stop_cause(c, lang))
        for c in changes
    ]


def _began_cause(change: Onset, lang: str) -> str:
    why = change.hold.code if change.hold is not None else change.why
    why = why if why in CAUSES[lang] else "released"
    return CAUSES[lang][why].format(hours=", ".join(change.grant.spec.hours or ()))


def _stop_cause(stop: Stop, lang: str) -> str:
    why = stop.why
    if stop.why == "held":
        why = stop.reason.code if stop.reason is not None else "held"
    elif stop.why == "validity" and stop.reason is not None:
        why = "consent" if stop.reason.params.get("what") == "consent" else "validity"
    why = why if why in STOP_CAUSES[lang] else "held"
    return STOP_CAUSES[lang][why].format(hours=", ".join(stop.grant.spec.hours or ()))


def _stopped(
    engine: Engine, decision: Decision, named: str, stop: Stop, *, replaced: bool, lang: str
) -> str:
    cause = _stop_cause(stop, lang)
    words = STOPPED if replaced else STOPPED_WITHHELD
    lead = words[lang].format(grant=stop.grant.id, recipient=named, cause=cause)
    return f"{lead} {engine.explain(decision, lang)}"


def change_key(changes: tuple[Change, ...], then: str) -> tuple[object, ...]:
    return (then, *(_one_key(change) for change in changes))


def _one_key(change: Change) -> tuple[object, ...]:
    if isinstance(change, Stop):
        reason = change.reason
        params = tuple(sorted(reason.params.items())) if reason else ()
        return ("stop", change.grant.id, change.why, reason.code if reason else None, params)
    hold = change.hold.code if change.hold else None
    return ("began", change.grant.id, change.why, hold)


def explain_key(decision: Decision) -> tuple[object, ...]:
    return (
        decision.customer,
        decision.device,
        decision.recipient,
        decision.outcome,
        decision.grant,
        decision.policy_version,
        decision.shared,
        decision.altered,
        decision.withheld,
        decision.reason.code if decision.reason else None,
        tuple(sorted(decision.reason.params.items())) if decision.reason else (),
        decision.opaque,
        decision.stream,
        tuple(decision.omitted.items()),
        tuple(
            sorted(
                (p, r.code, tuple(sorted(r.params.items())))
                for p, r in decision.field_reasons.items()
            )
        ),
    )


def explained_size(key: tuple[object, ...], texts: dict[str, str]) -> int:
    """Bytes a cache entry holds, roughly (paths in the key count; 2 bytes a character)."""
    chars = sum(len(t) for t in texts.values())
    for part in key:
        if isinstance(part, tuple):
            chars += sum(len(p) if isinstance(p, str) else 64 for p in part)
    return 2 * chars + 600


def entry_texts(
    engine: Engine,
    decision: Decision,
    *,
    customer: str,
    recipient: str,
    grant: str,
    changes: tuple[Change, ...],
    replaced: bool,
    then: str,
    inside: bool,
    maybe_sent: bool = False,
) -> dict[str, str]:
    """The German and English text of the entry for a row of ``customer`` to ``recipient``
    under ``grant`` that may not leave as decided: decided again (``replaced``) or withheld,
    after ``changes`` of overlapping grants or for the decision's own reason. ``inside``: the
    row was decided inside the allowed hours the withholding grant has now; ``maybe_sent``: an
    earlier attempt may have delivered it (``MAYBE_SENT``)."""
    texts: dict[str, str] = {}
    reason = decision.reason or Reason("internal_error")
    policy = engine.policy(customer)
    named = policy.recipients.get(recipient, recipient) if policy else recipient
    for lang in ("de", "en"):
        if maybe_sent and not replaced:
            texts[lang] = MAYBE_SENT[lang].format(
                why=_why(decision.grant or grant, reason, named, changes, inside=inside, lang=lang),
                recipient=named,
            )
        elif changes:
            texts[lang] = change_text(
                engine, decision, named, changes, replaced=replaced, then=then, lang=lang
            )
        elif not replaced and reason.code == "outside_hours" and inside:
            texts[lang] = HOURS_ENDED[lang].format(
                grant=decision.grant or grant,
                hours=reason.params.get("hours", ""),
                recipient=named,
            )
        else:
            if replaced:
                lead = REDECIDED[lang].format(version=(decision.policy_version or "")[:12])
            else:
                lead = WITHHELD[lang].format(reason=reason_text(lang, reason))
            texts[lang] = f"{lead} {engine.explain(decision, lang)}"
        if maybe_sent and replaced:
            texts[lang] += " " + MAYBE_SENT_BEFORE[lang].format(recipient=named)
    return texts
