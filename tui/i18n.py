"""Every string the TUI shows, in German and English: one gettext catalog, looked up by key.

``t("follow", "de")`` -> ``"FOLGEN"``. Placeholders use ``str.format`` names. A key missing in
one language is a bug the catalog test catches (``tests/tui/test_i18n.py``), never a silent
fallback to the key itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from textual.dom import DOMNode

from policies.catalog import load_catalogs

__all__ = ["CATALOG", "LANGUAGES", "Lang", "relabel", "t"]

Lang = Literal["de", "en"]
LANGUAGES: tuple[Lang, ...] = ("de", "en")

# The texts live in tui/locale/<lang>/LC_MESSAGES/tui.po, read by the project's one catalog
# loader; here they are turned around to key -> language -> text. A key one language lacks has no
# entry for it, so the catalog test names it and t() fails loudly instead of showing the key.
_TEXTS = load_catalogs("tui.locale", "tui")
CATALOG: dict[str, dict[Lang, str]] = {
    key: {lang: _TEXTS[lang][key] for lang in LANGUAGES if key in _TEXTS[lang]}
    for key in dict.fromkeys(k for lang in LANGUAGES for k in _TEXTS[lang])
}


def t(key: str, lang: Lang, **params: object) -> str:
    """The catalog string ``key`` in ``lang``, formatted with ``params``."""
    text = CATALOG[key][lang]
    return text.format(**params) if params else text


def relabel(node: DOMNode, lang: Lang) -> None:
    """Show ``node``'s key bindings in ``lang``.

    A binding's description is written as its catalog key (``"k_details"``); once relabelled it
    holds a translation, which maps back to the key, so switching again works.
    """
    for key, bindings in node._bindings.key_to_bindings.items():
        labelled = []
        for binding in bindings:
            catalog_key = _KEY_OF.get(binding.description)
            labelled.append(
                binding
                if catalog_key is None
                else replace(binding, description=t(catalog_key, lang))
            )
        node._bindings.key_to_bindings[key] = labelled


_KEY_OF: dict[str, str] = {}
for _key, _texts in CATALOG.items():
    if _key.startswith("k_"):
        _KEY_OF[_key] = _key
        for _text in _texts.values():
            _KEY_OF.setdefault(_text, _key)
