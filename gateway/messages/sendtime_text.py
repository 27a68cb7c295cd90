"""The words of send-time entries (gateway/messages/sendtime.py), German and English.

Each text is the first sentence (or the whole) of an entry the send-time check writes when a
queued row may not leave as it was decided; the decision's own explanation follows where the
check says so. Each names what happened while the row waited, never a message value.
"""

from __future__ import annotations

__all__ = [
    "BEGAN",
    "BEGAN_UNDECIDED",
    "BEGAN_WITHHELD",
    "CAUSES",
    "HOURS_ENDED",
    "NOT_SUMMARISED",
    "REDECIDED",
    "STOPPED",
    "STOPPED_WITHHELD",
    "STOP_CAUSES",
    "UNDECIDED",
    "WITHHELD",
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
# here: the message came inside them; the hours ended while it waited.
HOURS_ENDED = {
    "de": "Beim Versand zurückgehalten, weil die erlaubten Zeiten der Freigabe „{grant}“ "
    "({hours}) vorbei waren, bevor {recipient} erreichbar war. Entschieden wurde die Nachricht "
    "innerhalb dieser Zeiten; sie ging an niemanden.",
    "en": "Withheld at send time, because the allowed hours of grant '{grant}' ({hours}) had "
    "ended before {recipient} could be reached. The message was decided inside those hours; it "
    "went to no one.",
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
        "erased": "ihr Pseudonym-Schlüssel wurde gelöscht",
        "held": "sie wird zurückgehalten",  # a hold of another kind
    },
    "en": {
        "hours": "its allowed hours, {hours}, ended",
        "validity": "its validity ended",
        "consent": "the consent it rests on expired",
        "withdrawn": "consent to it was withdrawn",
        "objected": "an objection to it was raised",
        "restricted": "its processing was restricted",
        "erased": "its pseudonym key was erased",
        "held": "it is held back",  # a hold of another kind
    },
}
