"""The one-line summary of an explanation: its first sentence, in every language it has.

A sentence ends at ". " or "; " outside brackets and quotes, not after an abbreviation; a
withheld entry's summary starts with the reason, since a narrow terminal shows only the start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.log.documents import ShownBody
from policies.decision import Reason
from policies.explain import reason_text

__all__ = ["summary_of"]


# Words a full stop follows without ending the sentence ("Dr. Miriam Berg", "Art. 6", "z. B.").
_ABBREVIATIONS = frozenset(
    [
        "dr",
        "prof",
        "nr",
        "no",
        "st",
        "hr",
        "fr",
        "art",
        "abs",
        "bzw",
        "ca",
        "vgl",
        "ggf",
        "inkl",
        "evtl",
        "mr",
        "mrs",
        "ms",
        "jr",
        "sr",
        "co",
        "ltd",
        "inc",
        "vs",
        "etc",
        "approx",
        "dipl",
        "ing",
    ]
)
_OPEN = {"(": ")", "[": "]", "„": "“", "«": "»", "‹": "›", "‚": "‘"}


def summary_of(text: str) -> str:
    """The first sentence (or line) of an explanation, for the one-line summary.

    A sentence ends at ". " or "; " outside brackets and quotes (a device's or a person's name is
    quoted and may hold a full stop), and not after an abbreviation or a single letter: the
    summary of "… withdrawn by Dr. Miriam Berg. …" is not "… withdrawn by Dr."."""
    line = text.strip().split("\n", 1)[0]
    closing: list[str] = []
    for i, char in enumerate(line):
        if closing and char == closing[-1]:
            closing.pop()
        elif char in _OPEN:
            closing.append(_OPEN[char])
        elif char == "“":  # English opening quote (German closes with it: handled above)
            closing.append("”")
        elif char == '"':
            if closing and closing[-1] == '"':
                closing.pop()
            else:
                closing.append('"')
        elif char in ".;" and not closing and line[i + 1 : i + 2] == " ":
            word = re.search(r"(\w+)$", line[:i])
            if char == "." and word is not None:
                stem = word.group(1)
                if len(stem) == 1 or stem.casefold() in _ABBREVIATIONS:
                    continue
            return line[: i + 1]
    return line


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _summaries(doc: ShownBody, texts: Mapping[str, str]) -> dict[str, str]:
    """The list's summary per language; a withheld entry's starts with the reason it was
    withheld (its first sentence says only that nothing was sent, and a narrow terminal shows
    only the start of the column)."""
    reason = doc.get("reason")
    if doc.get("outcome") == "withheld" and isinstance(reason, str) and reason:
        params = {str(k): str(v) for k, v in (doc.get("reason_params") or {}).items()}
        why = Reason(reason, params)
        return {
            lang: f"{_capital(reason_text(lang, why))}: {summary_of(text)}"
            for lang, text in texts.items()
        }
    return {lang: summary_of(text) for lang, text in texts.items()}
