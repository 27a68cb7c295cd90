"""The texts of the customer-rights features (erasure entries, reports, records of processing).

gettext catalogs, ``gateway/locale/<lang>/LC_MESSAGES/rights.po``, with symbolic msgids
(``report.title``) and Python ``{name}`` placeholders, read once with Babel's ``read_po`` like the
policy catalogs (``policies/catalog.py``). A text missing in German falls back to English, then to
the msgid, so a gap shows as a visible key rather than a crash.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

__all__ = ["CATALOGS", "LANGUAGES", "join", "tr"]

LANGUAGES = ("de", "en")
_HERE = Path(__file__).parent


def _load(lang: str) -> dict[str, str]:
    with (_HERE / lang / "LC_MESSAGES" / "rights.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    return {
        m.id: m.string
        for m in catalog
        if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string
    }


CATALOGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def tr(lang: str, msgid: str, **params: str) -> str:
    """The text for ``msgid`` in ``lang`` (de or en), with ``{name}`` placeholders filled."""
    catalog = CATALOGS.get(lang, CATALOGS["en"])
    template = catalog.get(msgid) or CATALOGS["en"].get(msgid) or msgid
    return template.format(**params) if params else template


def join(lang: str, items: list[str]) -> str:
    """``a, b and c`` / ``a, b und c``."""
    if len(items) <= 1:
        return "".join(items)
    return tr(lang, "list.and", head=", ".join(items[:-1]), last=items[-1])
