"""The portal's words: every key its pages and handlers use exists in German and English, and
the language follows the customer's choice, then the browser's."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from gateway.operations.portal.texts import LANGS, PORTAL, SHARED, choose_language, t

PACKAGE = files("gateway.operations.portal")


def used_keys() -> set[str]:
    found: set[str] = set()
    sources = [p for p in (PACKAGE / "templates").iterdir() if p.name.endswith(".html")]
    sources += [p for p in PACKAGE.iterdir() if p.name.endswith(".py")]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        found |= set(re.findall(r"\bt\('([a-z_0-9]*[a-z0-9])'", text))
        found |= set(re.findall(r"\bt\((?:lang|request\[\"lang\"\]), \"([a-z_0-9]+)\"", text))
    return found


def test_every_key_used_exists_in_both_languages() -> None:
    keys = used_keys()
    assert len(keys) > 60  # the scan found the pages' keys
    for key in sorted(keys):
        for lang in LANGS:
            assert key in PORTAL[lang] or key in SHARED[lang], f"{key} missing in {lang}"


def test_keys_made_from_parts_exist_in_both_languages() -> None:
    """``t('lb_' + basis)`` and ``t('switch_' + lang)``: every value they are made from."""
    for lang in LANGS:
        for basis in (
            "consent",
            "contract",
            "legal_obligation",
            "vital_interests",
            "public_task",
            "legitimate_interests",
        ):
            assert t(lang, f"lb_{basis}")
        for other in LANGS:
            assert t(lang, f"switch_{other}")


def test_the_portals_own_catalog_is_complete_in_both() -> None:
    assert set(PORTAL["de"]) == set(PORTAL["en"])


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        ("en", "de-DE,de;q=0.9", "en"),
        (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "en-GB,en;q=0.9,de;q=0.5", "en"),
        (None, "fr-FR,fr;q=0.9,en;q=0.5", "en"),
        (None, "de;q=0.2,en;q=0.9", "en"),
        (None, "", "de"),
        (None, "xx", "de"),
        ("fr", None, "de"),
    ],
)
def test_the_language_is_the_choice_then_the_browsers(
    chosen: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(chosen, header) == expected


def test_shared_words_come_from_the_tui_catalog() -> None:
    assert t("de", "withheld") == SHARED["de"]["withheld"]
    assert t("en", "nav_log") == "My log"


def test_a_checkpoint_has_one_name_in_german_as_in_the_tui_and_the_report() -> None:
    """The download page's heading and its facts, the entry page's proof line (the TUI's
    catalog) and the access report all say "Prüfpunkt": a customer reading "Kontrollpunkt"
    beside "Signierter Prüfpunkt" on one page cannot tell they are the same file."""
    german = {**SHARED["de"], **PORTAL["de"]}
    assert not [key for key, text in german.items() if "Kontrollpunkt" in text]
    assert "Prüfpunkt" in t("de", "checkpoint_title") and "Prüfpunkt" in t("de", "d_checkpoint")


def test_the_download_page_labels_every_fact_in_the_customers_language() -> None:
    page = (PACKAGE / "templates" / "download.html").read_text(encoding="utf-8")
    facts = re.search(r'<dl class="facts">(.*?)</dl>', page, re.S)
    assert facts is not None
    labels = re.findall(r"<dt>(.*?)</dt>", facts.group(1))
    assert labels and all(label.startswith("{{ t('") for label in labels), labels


def test_the_bundle_is_the_only_package_the_download_page_speaks_of() -> None:
    """German "Paket" is the signed bundle the page offers; the install step called the
    software a "Paket" from the installer too, so the bundle seemed to come from the installer."""
    assert "Paket" in t("de", "download_bundle")
    assert "Paket" not in t("de", "verify_step_install")
    assert "Software" in t("de", "verify_step_install")
    assert "package" not in t("en", "verify_step_install")


@pytest.mark.parametrize(("lang", "fingerprint"), [("de", "Fingerabdruck"), ("en", "fingerprint")])
def test_the_receipt_does_not_promise_a_proof_from_a_key_fetched_from_the_same_box(
    lang: str, fingerprint: str
) -> None:
    """The receipt page offers the gateway's key beside the receipt: checking a receipt with a
    key from the box it is checked against proves nothing unless the key's fingerprint is
    compared with the installer's, as the download page says."""
    assert fingerprint in t(lang, "receipt_keep")
