"""The message catalogs (policies/catalog.py): one loader for every package's .po files, each
catalog complete in both languages with the same placeholders (a sentence that lost a {name} in
one language would say less to that customer), and a gap shown as English, then as its key."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from policies.catalog import CATALOGS, LANGUAGES, load_catalogs, tr

DOMAINS = [("policies.locale", "einblick"), ("gateway.locale", "rights"), ("tui.locale", "tui")]


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize(("package", "domain"), DOMAINS)
def test_every_text_exists_in_both_languages_with_the_same_placeholders(
    package: str, domain: str
) -> None:
    catalogs = load_catalogs(package, domain)
    assert set(catalogs) == set(LANGUAGES)
    de, en = catalogs["de"], catalogs["en"]
    assert len(en) > 10
    assert set(de) == set(en), sorted(set(de) ^ set(en))
    differ = {k: (_names(de[k]), _names(en[k])) for k in en if _names(de[k]) != _names(en[k])}
    assert not differ, differ


def test_tr_fills_placeholders_and_falls_back_visibly(monkeypatch: pytest.MonkeyPatch) -> None:
    msgid = next(k for k, v in CATALOGS["en"].items() if _names(v))
    params = {name: f"<{name}>" for name in _names(CATALOGS["en"][msgid])}
    text = tr("en", msgid, **params)
    assert all(f"<{name}>" in text for name in params) and "{" not in text
    assert tr("fr", msgid, **params) == text  # an unknown language reads English
    assert tr("de", "no.such.key") == "no.such.key"  # a gap is visible, never a crash
    monkeypatch.delitem(CATALOGS["de"], msgid)
    assert tr("de", msgid, **params) == text  # missing in German: the English sentence


def test_an_untranslated_entry_counts_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_locale"
    for lang, text in (("de", ""), ("en", "Hello {who}")):
        folder = package / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "x.po").write_text(
            f'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
            f'msgid "greet"\nmsgstr "{text}"\n',
            encoding="utf-8",
        )
    (package / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    catalogs = load_catalogs("fake_locale", "x")
    assert catalogs == {"de": {}, "en": {"greet": "Hello {who}"}}
