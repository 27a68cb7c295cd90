"""describe(): the whole policy in plain words, grant by grant."""

from __future__ import annotations

from policies.compiler import CompiledPolicy
from policies.describe import describe


def test_describe_examples_in_both_languages(examples: list[CompiledPolicy]) -> None:
    bakery, vans, building = examples
    german = describe(bakery, "de")
    assert german.startswith("Wer bekommt was, und warum – Bäckerei Schmidt")
    assert "Freigabe „maintenance“ an Ofenbau Müller GmbH – Wartungscloud" in german
    assert "Vertragserfüllung (Art. 6 Abs. 1 lit. b DSGVO)" in german
    assert "serial durch ein Pseudonym ersetzt" in german
    assert "Hintertür (Kartenleser)" in german  # listed as a device, named by no grant
    vans_de = describe(vans, "de")
    assert "lat/lon auf ein Raster von etwa 500 m vergröbert" in vans_de
    assert "Topic-Ebene „driver“ durch ein Pseudonym ersetzt" in vans_de
    assert "Einwilligung erteilt von Fahrerinnen und Fahrer" in vans_de
    assert "Nur zu diesen Zeiten: 06:00-20:00" in vans_de
    english = describe(building, "en")
    assert english.startswith("Who gets what, and why – Berg & Partner")
    assert "ENERGY.Power summarised as mean and maximum per 15 minutes" in english
    assert "consent (GDPR Art. 6(1)(a))" in english
    assert "At most one message per minute" in english
    for policy in examples:
        for lang in ("de", "en"):
            text = describe(policy, lang)
            assert "{" not in text.replace("{customer}", "").replace("{device}", "").replace(
                "{driver}", ""
            ).replace("{stream}", "")
