"""The texts of the customer-rights features (erasure entries, reports, records of processing).

gettext catalogs, ``gateway/locale/<lang>/LC_MESSAGES/rights.po``, with symbolic msgids
(``report.title``) and Python ``{name}`` placeholders, read once by the one catalog loader
(``policies/catalog.py``). A text missing in German falls back to English, then to the msgid, so
a gap shows as a visible key rather than a crash.

Counted texts ("1 entry" / "2 entries") are gettext plural entries (``msgid_plural``,
``msgstr[0]``, ``msgstr[1]``) chosen by the catalog's ``Plural-Forms`` rule, as gettext itself
does; numbers, lists and dates are formatted by Babel for the language (German ``1.234``,
``a, b und c``, ``03.12.2026 15:30 MEZ``), never by hand.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.lists import format_list
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from policies.catalog import LANGUAGES, load_catalogs

__all__ = ["CATALOGS", "LOCALES", "join", "number", "tr", "trn", "when"]

CATALOGS: dict[str, dict[str, str]] = load_catalogs("gateway.locale", "rights")

# The Babel locale per language. British English: lists without the serial comma ("a, b and c"),
# the same as the texts always read.
LOCALES = {"de": "de_DE", "en": "en_GB"}

# How a date and time reads in customer text; the zone's short name says which clock it is.
_WHEN = {"de": "dd.MM.yyyy HH:mm:ss zzz", "en": "yyyy-MM-dd HH:mm:ss zzz"}


@dataclass(frozen=True, slots=True)
class _Plurals:
    """One language's counted texts: the form index for ``n`` and each msgid's forms."""

    form: Callable[[int], int]
    texts: dict[str, tuple[str, ...]]


def _load_plurals(domain: str) -> dict[str, _Plurals]:
    out: dict[str, _Plurals] = {}
    for lang in LANGUAGES:
        resource = files("gateway.locale") / lang / "LC_MESSAGES" / f"{domain}.po"
        with resource.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        texts = {
            m.id[0]: tuple(str(s) for s in m.string)
            for m in catalog
            if isinstance(m.id, tuple) and isinstance(m.string, tuple) and all(m.string)
        }
        # gettext's own compiler for the catalog's plural expression, e.g. ``(n != 1)``.
        out[lang] = _Plurals(gettext.c2py(catalog.plural_expr), texts)
    return out


PLURALS: dict[str, _Plurals] = _load_plurals("rights")


def tr(lang: str, msgid: str, **params: str) -> str:
    """The text for ``msgid`` in ``lang`` (de or en), with ``{name}`` placeholders filled."""
    catalog = CATALOGS.get(lang, CATALOGS["en"])
    template = catalog.get(msgid) or CATALOGS["en"].get(msgid) or msgid
    return template.format(**params) if params else template


def trn(lang: str, msgid: str, n: int, **params: str) -> str:
    """The counted text for ``msgid`` in the plural form ``n`` takes in ``lang``; ``{n}`` is
    filled with ``n`` formatted for the language, other placeholders from ``params``."""
    lang = lang if lang in PLURALS else "en"
    plurals = PLURALS[lang]
    forms = plurals.texts.get(msgid)
    if forms is None:
        plurals = PLURALS["en"]
        forms = plurals.texts.get(msgid)
    if forms is None:
        return msgid
    template = forms[min(plurals.form(n), len(forms) - 1)]
    return template.format(n=number(lang, n), **params)


def number(lang: str, n: int) -> str:
    """``1.234`` / ``1,234``."""
    return format_decimal(n, locale=LOCALES.get(lang, LOCALES["en"]))


def join(lang: str, items: Sequence[str]) -> str:
    """``a, b and c`` / ``a, b und c``."""
    return format_list(list(items), locale=LOCALES.get(lang, LOCALES["en"])) if items else ""


def when(lang: str, moment: datetime, timezone: str = "UTC") -> str:
    """``moment`` on the customer's clock (their policy's ``timezone``), zone named:
    ``03.12.2026 15:30:00 MEZ`` / ``2026-12-03 15:30:00 CET``."""
    return format_datetime(
        moment,
        _WHEN.get(lang, _WHEN["en"]),
        tzinfo=ZoneInfo(timezone),
        locale=LOCALES.get(lang, LOCALES["en"]),
    )
