"""The texts of the customer-rights features (erasure entries, reports, records of processing).

gettext catalogs, ``gateway/locale/<lang>/LC_MESSAGES/rights.po``, with symbolic msgids
(``report.title``) and Python ``{name}`` placeholders, read once by the one catalog loader
(``policies/catalog.py``). A text missing in German falls back to English, then to the msgid, so
a gap shows as a visible key rather than a crash.
"""

from __future__ import annotations

from policies.catalog import load_catalogs

__all__ = ["CATALOGS", "join", "tr"]

CATALOGS: dict[str, dict[str, str]] = load_catalogs("gateway.locale", "rights")


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
