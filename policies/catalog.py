"""The message catalogs: every sentence Einblick shows a customer, in German and English.

Texts live in gettext catalogs, ``policies/locale/<lang>/LC_MESSAGES/einblick.po``, with
symbolic msgids (``reason.withdrawn``) and Python ``{name}`` placeholders. They are read once at
import with Babel's ``read_po`` (no ``.mo`` build step). A missing text in one language falls
back to English, then to the msgid, so a gap shows up as a visible key instead of a crash.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

__all__ = ["CATALOGS", "LANGUAGES", "tr"]

LANGUAGES = ("de", "en")
_LOCALE = Path(__file__).parent / "locale"


def _load(lang: str) -> dict[str, str]:
    with (_LOCALE / lang / "LC_MESSAGES" / "einblick.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    out: dict[str, str] = {}
    for message in catalog:
        if isinstance(message.id, str) and message.id and isinstance(message.string, str):
            out[message.id] = message.string
    return out


CATALOGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def tr(lang: str, msgid: str, **params: str) -> str:
    """The text for ``msgid`` in ``lang`` (de or en), with ``{name}`` placeholders filled."""
    catalog = CATALOGS.get(lang, CATALOGS["en"])
    template = catalog.get(msgid) or CATALOGS["en"].get(msgid) or msgid
    return template.format(**params) if params else template
