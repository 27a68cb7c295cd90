"""The words of the payload profiles: the categories of data, how personal a field is, the
treatments a policy can apply, and for each category what a careful policy author would do and
why, in every language a customer reads (German and English)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "ADVICE",
    "CATEGORY_LABELS",
    "LANGUAGES",
    "TREATMENT_RATIONALE",
    "Category",
    "Personal",
    "Treatment",
]

LANGUAGES: tuple[str, ...] = ("de", "en")


class Category(StrEnum):
    LOCATION = "location"
    IDENTIFIER = "identifier"
    PRESENCE = "presence"
    TIMESTAMP = "timestamp"
    FREE_TEXT = "free_text"
    MEASUREMENT = "measurement"
    TECHNICAL = "technical"
    ENERGY_USE = "energy_use"
    NETWORK = "network"  # IP addresses, Wi-Fi names, access point MACs: they locate a home
    USER_SETTING = "user_setting"  # locale and similar traits of the person using the device
    RAW_DATA = "raw_data"  # opaque bytes that can only be passed whole or withheld


class Personal(StrEnum):
    NONE = "none"
    DIRECT = "direct"  # personal data or a persistent identifier in itself
    INDIRECT = "indirect"  # allows inferences about a person (energy use, CO2 as occupancy)


class Treatment(StrEnum):
    KEEP = "keep"
    COARSEN = "coarsen"
    PSEUDONYMISE = "pseudonymise"
    TRUNCATE = "truncate"
    ROUND = "round"
    AGGREGATE = "aggregate"
    WITHHOLD = "withhold"


CATEGORY_LABELS: Mapping[Category, Mapping[str, str]] = MappingProxyType(
    {
        Category.LOCATION: {"de": "Standort", "en": "location"},
        Category.IDENTIFIER: {"de": "Gerätekennung", "en": "device identifier"},
        Category.PRESENCE: {"de": "Anwesenheit", "en": "presence"},
        Category.TIMESTAMP: {"de": "Zeitpunkt", "en": "time"},
        Category.FREE_TEXT: {"de": "Freitext", "en": "free text"},
        Category.MEASUREMENT: {"de": "Messwert", "en": "measurement"},
        Category.TECHNICAL: {"de": "technische Angabe", "en": "technical detail"},
        Category.ENERGY_USE: {"de": "Energieverbrauch", "en": "energy use"},
        Category.NETWORK: {"de": "Heimnetz-Angabe", "en": "home network detail"},
        Category.USER_SETTING: {"de": "persönliche Einstellung", "en": "personal setting"},
        Category.RAW_DATA: {"de": "Rohdaten", "en": "raw data"},
    }
)

# What a careful policy author would do with a field of this category, and why.
ADVICE: Mapping[Category, tuple[Treatment, str, Mapping[str, str]]] = MappingProxyType(
    {
        Category.LOCATION: (
            Treatment.COARSEN,
            "1000 m",
            {
                "de": "Auf etwa 1 km vergröbern: der Empfänger sieht die Gegend, nicht die Adresse.",
                "en": "Coarsen to about 1 km: the recipient sees the area, not the address.",
            },
        ),
        Category.IDENTIFIER: (
            Treatment.PSEUDONYMISE,
            "",
            {
                "de": "Pseudonymisieren: Nachrichten bleiben zuordenbar, das Gerät unerkannt.",
                "en": "Pseudonymise: messages stay linkable, the device stays unrecognised.",
            },
        ),
        Category.PRESENCE: (
            Treatment.AGGREGATE,
            "mean over 15 min",
            {
                "de": "Über 15 Minuten zusammenfassen: zeigt Belegung, nicht das Kommen und Gehen.",
                "en": "Aggregate over 15 minutes: shows occupancy, not comings and goings.",
            },
        ),
        Category.TIMESTAMP: (
            Treatment.TRUNCATE,
            "minute",
            {
                "de": "Auf die Minute kürzen: genügt für Auswertungen, verrät weniger Gewohnheiten.",
                "en": "Truncate to the minute: enough for analysis, reveals fewer habits.",
            },
        ),
        Category.FREE_TEXT: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: Freitext kann alles enthalten, auch Namen und Orte.",
                "en": "Withhold: free text can contain anything, names and places included.",
            },
        ),
        Category.MEASUREMENT: (
            Treatment.KEEP,
            "",
            {
                "de": "Unverändert teilen: ein Messwert ohne Personenbezug.",
                "en": "Share unchanged: a measurement that says nothing about a person.",
            },
        ),
        Category.TECHNICAL: (
            Treatment.KEEP,
            "",
            {
                "de": "Unverändert teilen: technischer Zustand des Geräts.",
                "en": "Share unchanged: technical state of the device.",
            },
        ),
        Category.ENERGY_USE: (
            Treatment.AGGREGATE,
            "mean over 15 min",
            {
                "de": "Über 15 Minuten zusammenfassen: der Verlauf verrät sonst den Tagesablauf.",
                "en": "Aggregate over 15 minutes: the fine-grained curve reveals daily routines.",
            },
        ),
        Category.NETWORK: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: Netzwerknamen und -adressen lassen sich einem Haushalt zuordnen.",
                "en": "Withhold: network names and addresses can be traced to a household.",
            },
        ),
        Category.USER_SETTING: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: sagt etwas über die Person, nicht über das Gerät.",
                "en": "Withhold: says something about the person, not about the device.",
            },
        ),
        Category.RAW_DATA: (
            Treatment.WITHHOLD,
            "",
            {
                "de": "Zurückhalten: undurchsichtige Rohdaten lassen sich nicht prüfen.",
                "en": "Withhold: opaque raw data cannot be inspected.",
            },
        ),
    }
)


TREATMENT_RATIONALE: Mapping[Treatment, Mapping[str, str]] = MappingProxyType(
    {
        Treatment.KEEP: {
            "de": "Unverändert teilen: für sich genommen verrät der Wert wenig über eine Person.",
            "en": "Share unchanged: on its own the value reveals little about a person.",
        },
        Treatment.COARSEN: ADVICE[Category.LOCATION][2],
        Treatment.PSEUDONYMISE: ADVICE[Category.IDENTIFIER][2],
        Treatment.TRUNCATE: ADVICE[Category.TIMESTAMP][2],
        Treatment.ROUND: {
            "de": "Runden: genügt für Abrechnung und Statistik, verrät weniger Verhalten.",
            "en": "Round: enough for billing and statistics, reveals less behaviour.",
        },
        Treatment.AGGREGATE: ADVICE[Category.PRESENCE][2],
        Treatment.WITHHOLD: {
            "de": "Zurückhalten: verfeinert andere personenbezogene Angaben oder ist nicht prüfbar.",
            "en": "Withhold: refines other personal data or cannot be inspected.",
        },
    }
)
