"""The message catalogs: every sentence Einblick shows a customer, in German and English.

Texts live in gettext catalogs, ``<package>/locale/<lang>/LC_MESSAGES/<domain>.po``, with
symbolic msgids (``reason.withdrawn``) and Python ``{name}`` placeholders. ``load_catalogs`` is
the one loader every package uses (``policies.locale``/einblick: explanations;
``gateway.locale``/rights: customer rights; ``tui.locale``/tui: the screens); it reads each file once at import with Babel's ``read_po`` (no ``.mo``
build step; package data only, no other I/O). Here, a missing text in one language falls back to
English, then to the msgid, so a gap shows up as a visible key instead of a crash.
"""

from __future__ import annotations

from importlib.resources import files

from babel.messages.pofile import read_po

__all__ = ["CATALOGS", "LANGUAGES", "load_catalogs", "tr"]

LANGUAGES = ("de", "en")


def load_catalogs(package: str, domain: str) -> dict[str, dict[str, str]]:
    """``{lang: {msgid: text}}`` from ``<package>/<lang>/LC_MESSAGES/<domain>.po``.

    Untranslated entries (empty msgstr) are left out, so a lookup sees them as missing.
    """
    out: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        resource = files(package) / lang / "LC_MESSAGES" / f"{domain}.po"
        with resource.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        out[lang] = {
            m.id: m.string
            for m in catalog
            if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string
        }
    return out


CATALOGS: dict[str, dict[str, str]] = load_catalogs("policies.locale", "einblick")


def tr(lang: str, msgid: str, **params: str) -> str:
    """The text for ``msgid`` in ``lang`` (de or en), with ``{name}`` placeholders filled."""
    catalog = CATALOGS.get(lang, CATALOGS["en"])
    template = catalog.get(msgid) or CATALOGS["en"].get(msgid) or msgid
    return template.format(**params) if params else template
