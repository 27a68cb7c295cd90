"""The portal's words, German and English: its own catalog for what only the portal says
(``locale/<lang>/LC_MESSAGES/portal.po``), then the TUI's catalog for everything the two share
(decisions, columns, the details of an entry), read by the project's one catalog loader. Numbers,
dates and lists are Babel's (``gateway.locale``). A key missing in a language is an error the
catalog test names, never a silent fallback.
"""

from __future__ import annotations

from babel.core import negotiate_locale

from policies.catalog import LANGUAGES, load_catalogs

__all__ = ["LANGS", "choose_language", "t"]

LANGS: tuple[str, ...] = LANGUAGES
PORTAL = load_catalogs("gateway.operations.portal.locale", "portal")
SHARED = load_catalogs("tui.locale", "tui")


def t(lang: str, key: str, **params: object) -> str:
    """The text ``key`` in ``lang``: the portal's catalog first, then the TUI's."""
    lang = lang if lang in LANGS else "en"
    text = PORTAL[lang].get(key)
    if text is None:
        text = SHARED[lang][key]  # KeyError: a text missing from both catalogs is a bug
    return text.format(**params) if params else text


def choose_language(chosen: str | None, accept_language: str | None) -> str:
    """The customer's choice (cookie or ``?lang=``), else the browser's Accept-Language, else
    German (the product's home)."""
    if chosen in LANGS:
        return str(chosen)
    preferred: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            # Stable order among equal weights: earlier in the header wins.
            preferred.append((-quality + position * 1e-6, tag.strip().replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred)]
    found = negotiate_locale(ordered, list(LANGS), sep="_")
    if found is None:
        # negotiate_locale matches whole tags; "en-GB" also means English.
        found = next((tag[:2] for tag in ordered if tag[:2].lower() in LANGS), None)
    return (found or "de").lower()[:2]
