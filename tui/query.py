"""Filter and find queries: ``device:ofen recipient:wartung decision:withheld badge``.

Tokens with a known key narrow by that column; the same key twice means either value
(``decision:withheld decision:altered``), different keys must all hold, and every free word must
appear somewhere in the entry (device, recipient, purpose, explanation, fields). Values may be
quoted (``device:"Backofen 1"``). Matching ignores case. German keys and decision names work too
(``gerät:``, ``empfänger:``, ``kunde:``, ``entscheidung:zurückgehalten``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["EVERYTHING", "WITHHELD", "Query", "QueryError", "parse_query"]

_KEYS = {
    "device": "devices",
    "gerät": "devices",
    "geraet": "devices",
    "recipient": "recipients",
    "empfänger": "recipients",
    "empfaenger": "recipients",
    "customer": "customers",
    "kunde": "customers",
    "decision": "outcomes",
    "entscheidung": "outcomes",
}
_OUTCOMES = {
    "shared": "shared",
    "geteilt": "shared",
    "altered": "altered",
    "verändert": "altered",
    "veraendert": "altered",
    "withheld": "withheld",
    "zurückgehalten": "withheld",
    "zurueckgehalten": "withheld",
}


class QueryError(ValueError):
    """The query text cannot be read; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str = ""
    devices: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.devices or self.recipients or self.customers or self.outcomes or self.words
        )


EVERYTHING = Query()
WITHHELD = Query("decision:withheld", outcomes=("withheld",))


def parse_query(text: str) -> Query:
    """Parse the text typed after ``f`` or ``/``; QueryError names the bad token."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"{exc} in {text!r}") from exc
    found: dict[str, list[str]] = {
        "devices": [],
        "recipients": [],
        "customers": [],
        "outcomes": [],
        "words": [],
    }
    for token in tokens:
        key, sep, value = token.partition(":")
        slot = _KEYS.get(key.casefold()) if sep else None
        if slot is None:
            found["words"].append(token.casefold())
            continue
        value = value.strip()
        if not value:
            raise QueryError(f"{key}: needs a value, e.g. {key}:something")
        if slot == "outcomes":
            outcome = _OUTCOMES.get(value.casefold())
            if outcome is None:
                raise QueryError(f"decision: expected shared, altered or withheld, found {value!r}")
            value = outcome
        found[slot].append(value.casefold())
    return Query(
        text=text.strip(),
        devices=tuple(found["devices"]),
        recipients=tuple(found["recipients"]),
        customers=tuple(found["customers"]),
        outcomes=tuple(dict.fromkeys(found["outcomes"])),
        words=tuple(found["words"]),
    )
