"""Payload profiles: what the fields of real device formats mean, in words a customer reads.

A profile describes one device family (OwnTracks, Zigbee2MQTT, Tasmota, ...): the topic layouts
its firmware uses and, per field, what kind of data it is, whether it is personal data, how to
name it in German and English, and which treatment a policy author should consider. Profiles are
plain data: nothing here reads a clock, a file or a socket.

Paths use the policy path syntax: ``a.b`` a nested key, ``a[].b`` every element of array ``a``,
``$topic.<capture>`` a topic level captured by the profile's topic pattern, ``$payload`` a whole
plain-text body. A path naming an object covers everything below it.

Topic patterns are MQTT topics whose levels may contain captures: ``{name}`` matches a non-empty
run of characters without ``/``; a level may mix literals and captures (``{app}@{tenant}``,
``openevse-{suffix}``).

Errors::

    EinblickError
    └── ProfileError
        ├── UnknownProfile(name, known)
        └── UnknownLanguage(lang, known)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from policies.errors import EinblickError

__all__ = [
    "LANGUAGES",
    "PROFILES",
    "Category",
    "Field",
    "Personal",
    "Profile",
    "ProfileError",
    "Suggestion",
    "TopicMatch",
    "Treatment",
    "UnknownLanguage",
    "UnknownProfile",
    "category_label",
    "label",
    "level_captures",
    "match_topic",
    "profile",
    "suggestions",
]

LANGUAGES: tuple[str, ...] = ("de", "en")


class ProfileError(EinblickError):
    """A profile lookup asked for something the profiles do not have."""


class UnknownProfile(ProfileError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown payload profile {name!r}; known profiles: {', '.join(known)}")


class UnknownLanguage(ProfileError):
    def __init__(self, lang: str, known: tuple[str, ...]) -> None:
        self.lang = lang
        self.known = known
        super().__init__(f"unknown language {lang!r}; expected one of: {', '.join(known)}")


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


_CATEGORY_LABELS: Mapping[Category, Mapping[str, str]] = MappingProxyType(
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
_DEFAULTS: Mapping[Category, tuple[Treatment, str, Mapping[str, str]]] = MappingProxyType(
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


@dataclass(frozen=True, slots=True)
class Field:
    """One field (or topic level, or whole plain-text body) of a profile.

    ``topics`` limits the field to some of the profile's topic patterns; empty means all.
    """

    path: str
    category: Category
    personal: Personal
    labels: Mapping[str, str]  # language code -> label
    treatment: Treatment
    detail: str = ""
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested treatment for one field, with the reason in each language."""

    path: str
    category: Category
    personal: Personal
    treatment: Treatment
    detail: str
    rationale: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TopicMatch:
    pattern: str
    captures: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: Mapping[str, str]
    topics: tuple[str, ...]  # most specific first; the first pattern that matches wins
    fields: tuple[Field, ...]
    notes: str = ""

    @property
    def personal_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.personal is not Personal.NONE)

    def field(self, path: str, topic_pattern: str | None = None) -> Field | None:
        """The field at ``path`` (for messages on ``topic_pattern`` when given), or None."""
        for f in self.fields:
            if f.path != path:
                continue
            if topic_pattern is None or not f.topics or topic_pattern in f.topics:
                return f
        return None

    def match(self, topic: str) -> TopicMatch | None:
        """The first of this profile's topic patterns that ``topic`` matches, with captures."""
        for pattern in self.topics:
            captures = match_topic(pattern, topic)
            if captures is not None:
                return TopicMatch(pattern, MappingProxyType(captures))
        return None


_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    pos = 0
    for m in _CAPTURE.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        parts.append(f"(?P<{m.group(1)}>[^/]+?)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


def match_topic(pattern: str, topic: str) -> dict[str, str] | None:
    """Captures of ``topic`` against ``pattern``, or None when it does not match."""
    m = _compile(pattern).fullmatch(topic)
    return None if m is None else m.groupdict()


def level_captures(pattern: str, level: int) -> tuple[str, ...]:
    """Names of the captures in topic level ``level`` (0-based) of ``pattern``."""
    levels = pattern.split("/")
    if not 0 <= level < len(levels):
        return ()
    return tuple(_CAPTURE.findall(levels[level]))


def _f(
    path: str,
    category: Category,
    personal: Personal,
    de: str,
    en: str,
    *,
    treatment: Treatment | None = None,
    detail: str | None = None,
    topics: tuple[str, ...] = (),
) -> Field:
    default_treatment, default_detail, _ = _DEFAULTS[category]
    if treatment is None:
        treatment = default_treatment
        detail = default_detail if detail is None else detail
    return Field(
        path=path,
        category=category,
        personal=personal,
        labels=MappingProxyType({"de": de, "en": en}),
        treatment=treatment,
        detail=detail or "",
        topics=topics,
    )


_TREATMENT_RATIONALE: Mapping[Treatment, Mapping[str, str]] = MappingProxyType(
    {
        Treatment.KEEP: {
            "de": "Unverändert teilen: für sich genommen verrät der Wert wenig über eine Person.",
            "en": "Share unchanged: on its own the value reveals little about a person.",
        },
        Treatment.COARSEN: _DEFAULTS[Category.LOCATION][2],
        Treatment.PSEUDONYMISE: _DEFAULTS[Category.IDENTIFIER][2],
        Treatment.TRUNCATE: _DEFAULTS[Category.TIMESTAMP][2],
        Treatment.ROUND: {
            "de": "Runden: genügt für Abrechnung und Statistik, verrät weniger Verhalten.",
            "en": "Round: enough for billing and statistics, reveals less behaviour.",
        },
        Treatment.AGGREGATE: _DEFAULTS[Category.PRESENCE][2],
        Treatment.WITHHOLD: {
            "de": "Zurückhalten: verfeinert andere personenbezogene Angaben oder ist nicht prüfbar.",
            "en": "Withhold: refines other personal data or cannot be inspected.",
        },
    }
)

# Short names keep the tables below readable.
LOC, ID, PRES, TS = Category.LOCATION, Category.IDENTIFIER, Category.PRESENCE, Category.TIMESTAMP
TEXT, MEAS, TECH = Category.FREE_TEXT, Category.MEASUREMENT, Category.TECHNICAL
ENERGY, NET, SETTING, RAW = (
    Category.ENERGY_USE,
    Category.NETWORK,
    Category.USER_SETTING,
    Category.RAW_DATA,
)
DIRECT, INDIRECT, NO = Personal.DIRECT, Personal.INDIRECT, Personal.NONE
WITHHOLD, KEEP, ROUND = Treatment.WITHHOLD, Treatment.KEEP, Treatment.ROUND


def _p(
    name: str, de: str, en: str, topics: tuple[str, ...], *fields: Field, notes: str = ""
) -> Profile:
    return Profile(name, MappingProxyType({"de": de, "en": en}), topics, tuple(fields), notes)


_OWNTRACKS = _p(
    "owntracks",
    "OwnTracks (Handy-Standorte)",
    "OwnTracks (phone locations)",
    (
        "owntracks/{user}/{device}",
        "owntracks/{user}/{device}/status",
        "owntracks/{user}/{device}/event",
    ),
    _f("$topic.user", ID, DIRECT, "Benutzername", "user name"),
    _f("$topic.device", ID, DIRECT, "Gerätename", "device name"),
    _f("_type", TECH, NO, "Nachrichtentyp", "message type"),
    _f("lat", LOC, DIRECT, "Standort (Breitengrad)", "location (latitude)"),
    _f("lon", LOC, DIRECT, "Standort (Längengrad)", "location (longitude)"),
    _f("acc", LOC, DIRECT, "Genauigkeit des Standorts", "location accuracy", treatment=WITHHOLD),
    _f("alt", LOC, DIRECT, "Höhe über dem Meer", "altitude", treatment=WITHHOLD),
    _f("vac", LOC, DIRECT, "Genauigkeit der Höhe", "altitude accuracy", treatment=WITHHOLD),
    _f(
        "inregions",
        LOC,
        DIRECT,
        "aktuelle Orte (Regionen)",
        "regions currently in",
        treatment=WITHHOLD,
    ),
    _f("tid", ID, DIRECT, "Kürzel des Trackers", "tracker ID"),
    _f("tst", TS, DIRECT, "Zeitpunkt der Ortung", "time of the location fix"),
    _f("created_at", TS, DIRECT, "Zeitpunkt der Nachricht", "time the message was created"),
    _f("tag", TEXT, DIRECT, "Notiz", "note"),
    _f("t", TECH, NO, "Auslöser der Ortung", "trigger of the location fix"),
    _f("batt", TECH, NO, "Akkustand", "battery level"),
    _f("bs", TECH, NO, "Akkuzustand", "battery status"),
    _f("conn", TECH, NO, "Verbindungsart", "connection type"),
    _f("m", TECH, NO, "Überwachungsmodus", "monitoring mode"),
    _f(
        "iOS.deviceIdentifierForVendor",
        ID,
        DIRECT,
        "Geräte-ID des Herstellers",
        "vendor device identifier",
    ),
    _f("iOS.locale", SETTING, DIRECT, "Sprache und Region", "language and region"),
    _f("iOS.deviceModel", TECH, NO, "Gerätemodell", "device model"),
    _f("iOS.version", TECH, NO, "App-Version", "app version"),
    notes="Locations of people's phones; 'lwt' messages reveal when a phone went offline.",
)

_ZIGBEE2MQTT = _p(
    "zigbee2mqtt",
    "Zigbee2MQTT (Funksensoren)",
    "Zigbee2MQTT (radio sensors)",
    ("zigbee2mqtt/bridge/{kind}", "zigbee2mqtt/{friendly_name}"),
    _f("$topic.friendly_name", ID, DIRECT, "Gerätename oder -adresse", "device name or address"),
    _f("$topic.kind", TECH, NO, "Art der Bridge-Nachricht", "kind of bridge message"),
    _f("occupancy", PRES, DIRECT, "Anwesenheit (Bewegung)", "occupancy (motion)"),
    _f("illuminance", MEAS, INDIRECT, "Helligkeit", "illuminance"),
    _f("illuminance_lux", MEAS, INDIRECT, "Helligkeit in Lux", "illuminance in lux"),
    _f("temperature", MEAS, NO, "Temperatur", "temperature"),
    _f("humidity", MEAS, NO, "Luftfeuchte", "humidity"),
    _f("battery", TECH, NO, "Batteriestand", "battery level"),
    _f("voltage", TECH, NO, "Batteriespannung", "battery voltage"),
    _f("linkquality", TECH, NO, "Funkqualität", "link quality"),
    _f("type", TECH, NO, "Ereignistyp", "event type"),
    _f("data.ieee_address", ID, DIRECT, "IEEE-Adresse des Geräts", "device IEEE address"),
    _f("data.friendly_name", ID, DIRECT, "Gerätename", "device name"),
    notes="Without a friendly_name the topic carries the device's IEEE address.",
)

_TASMOTA = _p(
    "tasmota",
    "Tasmota (Schalter und Sensoren)",
    "Tasmota (switches and sensors)",
    ("tele/{topic}/SENSOR", "tele/{topic}/STATE", "tele/{topic}/LWT"),
    _f("$topic.topic", ID, DIRECT, "Gerätename (Topic)", "device topic name"),
    _f(
        "$payload", TECH, NO, "Verbindungsstatus", "connection status", topics=("tele/{topic}/LWT",)
    ),
    _f("Time", TS, NO, "Messzeitpunkt (Ortszeit)", "time of measurement (local)", treatment=KEEP),
    _f("DS18B20.Temperature", MEAS, NO, "Temperatur", "temperature"),
    _f(
        "SCD40.CarbonDioxide",
        MEAS,
        INDIRECT,
        "CO₂-Gehalt der Luft",
        "carbon dioxide",
        treatment=Treatment.AGGREGATE,
        detail="mean over 15 min",
    ),
    _f(
        "SCD40.eCO2",
        MEAS,
        INDIRECT,
        "CO₂-Äquivalent",
        "equivalent CO₂",
        treatment=Treatment.AGGREGATE,
        detail="mean over 15 min",
    ),
    _f("SCD40.Temperature", MEAS, NO, "Temperatur", "temperature"),
    _f("SCD40.Humidity", MEAS, NO, "Luftfeuchte", "humidity"),
    _f("SCD40.DewPoint", MEAS, NO, "Taupunkt", "dew point"),
    _f("TempUnit", TECH, NO, "Temperatureinheit", "temperature unit"),
    _f("Uptime", TECH, NO, "Laufzeit", "uptime"),
    _f("UptimeSec", TECH, NO, "Laufzeit in Sekunden", "uptime in seconds"),
    _f("Heap", TECH, NO, "freier Speicher", "free memory"),
    _f("SleepMode", TECH, NO, "Schlafmodus", "sleep mode"),
    _f("Sleep", TECH, NO, "Schlafdauer", "sleep time"),
    _f("LoadAvg", TECH, NO, "Auslastung", "load average"),
    _f("MqttCount", TECH, NO, "MQTT-Verbindungen", "MQTT connections"),
    _f("POWER", TECH, NO, "Schaltzustand", "switch state"),
    _f("Wifi.SSId", NET, DIRECT, "WLAN-Name", "Wi-Fi network name"),
    _f(
        "Wifi.BSSId",
        NET,
        DIRECT,
        "MAC-Adresse des WLAN-Zugangspunkts",
        "Wi-Fi access point MAC address",
    ),
    _f("Wifi.AP", TECH, NO, "WLAN-Zugangspunkt Nr.", "Wi-Fi access point no."),
    _f("Wifi.Channel", TECH, NO, "WLAN-Kanal", "Wi-Fi channel"),
    _f("Wifi.RSSI", TECH, NO, "WLAN-Empfang", "Wi-Fi reception"),
    _f("Wifi.Signal", TECH, NO, "WLAN-Signal", "Wi-Fi signal"),
    _f("Wifi.LinkCount", TECH, NO, "WLAN-Verbindungen", "Wi-Fi connections"),
    _f("Wifi.Downtime", TECH, NO, "WLAN-Ausfallzeit", "Wi-Fi downtime"),
    notes="Indoor CO₂ tracks how many people are in a room.",
)

_HOMEASSISTANT = _p(
    "homeassistant",
    "Home Assistant (MQTT)",
    "Home Assistant (MQTT)",
    (
        "homeassistant/binary_sensor/{object_id}/state",
        "homeassistant/{component}/{object_id}/config",
        "homeassistant/{component}/{node_id}/{object_id}/config",
        "{tracker}/attributes",
    ),
    _f(
        "$payload",
        PRES,
        DIRECT,
        "Bewegung erkannt (an/aus)",
        "motion detected (on/off)",
        topics=("homeassistant/binary_sensor/{object_id}/state",),
    ),
    _f("$topic.component", TECH, NO, "Komponententyp", "component type"),
    _f("$topic.object_id", TECH, NO, "Sensorname", "sensor name"),
    _f("$topic.node_id", ID, DIRECT, "Geräteadresse", "device address"),
    _f("$topic.tracker", ID, DIRECT, "Kennung des Trackers", "tracker identifier"),
    _f("latitude", LOC, DIRECT, "Standort (Breitengrad)", "location (latitude)"),
    _f("longitude", LOC, DIRECT, "Standort (Längengrad)", "location (longitude)"),
    _f(
        "gps_accuracy",
        LOC,
        DIRECT,
        "Genauigkeit des Standorts",
        "location accuracy",
        treatment=WITHHOLD,
    ),
    _f("device.identifiers", ID, DIRECT, "Gerätekennungen", "device identifiers"),
    _f("device.name", ID, DIRECT, "Gerätename", "device name"),
    _f("device.manufacturer", TECH, NO, "Hersteller", "manufacturer"),
    _f("device.model", TECH, NO, "Gerätemodell", "device model"),
    _f("device.sw_version", TECH, NO, "Firmware-Version", "firmware version"),
    _f("unique_id", ID, DIRECT, "eindeutige Kennung", "unique ID"),
    _f("name", TEXT, INDIRECT, "Anzeigename", "display name"),
    _f(
        "availability[].topic",
        ID,
        INDIRECT,
        "Topic für Erreichbarkeit",
        "availability topic",
        treatment=WITHHOLD,
    ),
    _f("state_topic", ID, INDIRECT, "Topic der Messwerte", "state topic", treatment=WITHHOLD),
    _f(
        "json_attributes_topic",
        ID,
        INDIRECT,
        "Topic der Attribute",
        "attributes topic",
        treatment=WITHHOLD,
    ),
    _f("device_class", TECH, NO, "Geräteklasse", "device class"),
    _f("state_class", TECH, NO, "Art des Messwerts", "state class"),
    _f("unit_of_measurement", TECH, NO, "Maßeinheit", "unit of measurement"),
    _f("value_template", TECH, NO, "Wertvorlage", "value template"),
    _f("enabled_by_default", TECH, NO, "standardmäßig aktiv", "enabled by default"),
    notes="Discovery configs (retained) share the broker with states and tracker positions.",
)

_SHELLY_GEN2 = _p(
    "shelly_gen2",
    "Shelly (2. Generation)",
    "Shelly (Gen2)",
    ("{id}/events/rpc", "{id}/status/{component}", "{id}/online"),
    _f(
        "$topic.id",
        ID,
        DIRECT,
        "Geräte-ID (enthält die MAC-Adresse)",
        "device ID (contains the MAC address)",
    ),
    _f("$topic.component", TECH, NO, "Komponente", "component"),
    _f("$payload", TECH, NO, "erreichbar", "online", topics=("{id}/online",)),
    _f("src", ID, DIRECT, "Absender (Geräte-ID)", "sender (device ID)"),
    _f("dst", ID, DIRECT, "Empfänger", "destination"),
    _f("method", TECH, NO, "Art der Meldung", "kind of notification"),
    _f("params.ts", TS, INDIRECT, "Zeitpunkt", "time"),
    _f("params.switch:0.output", TECH, NO, "Schaltzustand", "switch state"),
    _f(
        "params.switch:0.source",
        PRES,
        INDIRECT,
        "Auslöser (z. B. Tastendruck)",
        "trigger (e.g. button press)",
        treatment=KEEP,
    ),
    _f("params.switch:0.apower", ENERGY, INDIRECT, "Leistungsaufnahme", "power draw"),
    _f("params.switch:0.current", ENERGY, INDIRECT, "Stromstärke", "current"),
    _f("params.switch:0.voltage", MEAS, NO, "Netzspannung", "mains voltage"),
    _f(
        "params.switch:0.aenergy.total",
        ENERGY,
        INDIRECT,
        "Energieverbrauch gesamt",
        "total energy use",
        treatment=ROUND,
        detail="1000",
    ),
    _f(
        "params.switch:0.aenergy.by_minute",
        ENERGY,
        INDIRECT,
        "Energieverbrauch je Minute",
        "energy use per minute",
        treatment=WITHHOLD,
    ),
    _f(
        "params.switch:0.aenergy.minute_ts",
        TS,
        NO,
        "Zeitpunkt der Minutenwerte",
        "time of the per-minute values",
        treatment=KEEP,
    ),
    _f("params.switch:0.temperature", TECH, NO, "Gerätetemperatur", "device temperature"),
    _f("params.sys.mac", ID, DIRECT, "MAC-Adresse", "MAC address"),
    _f("params.sys.unixtime", TS, NO, "Gerätezeit", "device time", treatment=KEEP),
    _f("params.sys.time", TS, NO, "Uhrzeit des Geräts", "device clock", treatment=KEEP),
    _f("params.sys.uptime", TECH, NO, "Laufzeit", "uptime"),
    _f(
        "params.wifi.sta_ip",
        NET,
        DIRECT,
        "IP-Adresse im Heimnetz",
        "IP address in the home network",
    ),
    _f("params.wifi.ssid", NET, DIRECT, "WLAN-Name", "Wi-Fi network name"),
    _f("params.wifi.rssi", TECH, NO, "WLAN-Empfang", "Wi-Fi reception"),
    _f("params.wifi.status", TECH, NO, "WLAN-Status", "Wi-Fi status"),
    notes="The device ID embeds the MAC address; a button press reveals someone was there.",
)

_TTN_V3 = _p(
    "ttn_v3",
    "The Things Stack v3 (LoRaWAN)",
    "The Things Stack v3 (LoRaWAN)",
    ("v3/{app}@{tenant}/devices/{dev}/up", "v3/{app}@{tenant}/devices/{dev}/join"),
    _f("$topic.app", TECH, NO, "Anwendungs-ID", "application ID"),
    _f("$topic.tenant", TECH, NO, "Mandant", "tenant"),
    _f("$topic.dev", ID, DIRECT, "Geräte-ID", "device ID"),
    _f("end_device_ids.device_id", ID, DIRECT, "Geräte-ID", "device ID"),
    _f("end_device_ids.dev_eui", ID, DIRECT, "DevEUI (Seriennummer)", "DevEUI (serial number)"),
    _f("end_device_ids.dev_addr", ID, DIRECT, "Netzadresse des Geräts", "device network address"),
    _f("end_device_ids.join_eui", TECH, NO, "JoinEUI", "JoinEUI"),
    _f(
        "end_device_ids.application_ids.application_id", TECH, NO, "Anwendungs-ID", "application ID"
    ),
    _f("correlation_ids", TECH, NO, "Korrelations-IDs", "correlation IDs"),
    _f("received_at", TS, INDIRECT, "Empfangszeit", "time received"),
    _f("simulated", TECH, NO, "simulierte Nachricht", "simulated message"),
    _f("uplink_message.f_cnt", TECH, NO, "Nachrichtenzähler", "frame counter"),
    _f("uplink_message.f_port", TECH, NO, "Anwendungsport", "application port"),
    _f("uplink_message.frm_payload", RAW, INDIRECT, "Nutzdaten (roh)", "payload (raw)"),
    _f("uplink_message.decoded_payload", MEAS, NO, "Messwerte", "readings"),
    _f(
        "uplink_message.session_key_id",
        TECH,
        NO,
        "Sitzungsschlüssel-ID",
        "session key ID",
        treatment=WITHHOLD,
    ),
    _f(
        "uplink_message.rx_metadata[].gateway_ids.gateway_id",
        TECH,
        NO,
        "Empfangsgateway",
        "receiving gateway",
    ),
    _f(
        "uplink_message.rx_metadata[].location.latitude",
        LOC,
        INDIRECT,
        "Standort des Empfangsgateways (Breitengrad)",
        "receiving gateway location (latitude)",
    ),
    _f(
        "uplink_message.rx_metadata[].location.longitude",
        LOC,
        INDIRECT,
        "Standort des Empfangsgateways (Längengrad)",
        "receiving gateway location (longitude)",
    ),
    _f("uplink_message.rx_metadata[].rssi", TECH, NO, "Empfangsstärke", "signal strength"),
    _f(
        "uplink_message.rx_metadata[].snr",
        TECH,
        NO,
        "Signal-Rausch-Abstand",
        "signal-to-noise ratio",
    ),
    _f("uplink_message.settings", TECH, NO, "Funkeinstellungen", "radio settings"),
    _f("uplink_message.consumed_airtime", TECH, NO, "Sendezeit", "airtime"),
    _f("uplink_message.received_at", TS, INDIRECT, "Empfangszeit", "time received"),
    _f(
        "uplink_message.locations.user.latitude",
        LOC,
        DIRECT,
        "Standort (Breitengrad)",
        "location (latitude)",
    ),
    _f(
        "uplink_message.locations.user.longitude",
        LOC,
        DIRECT,
        "Standort (Längengrad)",
        "location (longitude)",
    ),
    _f(
        "uplink_message.locations.user.altitude",
        LOC,
        DIRECT,
        "Höhe",
        "altitude",
        treatment=WITHHOLD,
    ),
    _f(
        "uplink_message.locations.user.source",
        TECH,
        NO,
        "Herkunft des Standorts",
        "location source",
    ),
    notes="Uplinks carry the device's registered position and the receiving gateways' positions.",
)

_SPARKPLUG_B = _p(
    "sparkplug_b",
    "Sparkplug B (Industrie)",
    "Sparkplug B (industrial)",
    (
        "spBv1.0/STATE/{host}",
        "spBv1.0/{group}/NBIRTH/{node}",
        "spBv1.0/{group}/NDATA/{node}",
        "spBv1.0/{group}/NDEATH/{node}",
        "spBv1.0/{group}/DBIRTH/{node}/{device}",
        "spBv1.0/{group}/DDATA/{node}/{device}",
        "spBv1.0/{group}/DDEATH/{node}/{device}",
    ),
    _f("$topic.host", TECH, NO, "Leitsystem", "host application"),
    _f("$topic.group", TECH, NO, "Gruppe", "group"),
    _f("$topic.node", TECH, NO, "Edge-Knoten", "edge node"),
    _f("$topic.device", TECH, NO, "Maschine", "machine"),
    _f("timestamp", TS, NO, "Zeitpunkt", "time", treatment=KEEP),
    _f("seq", TECH, NO, "Folgenummer", "sequence number"),
    _f("metrics[].name", TECH, NO, "Name der Messgröße", "metric name"),
    _f("metrics[].alias", TECH, NO, "Kurzname der Messgröße", "metric alias"),
    _f(
        "metrics[].timestamp",
        TS,
        NO,
        "Zeitpunkt der Messung",
        "time of measurement",
        treatment=KEEP,
    ),
    _f("metrics[].dataType", TECH, NO, "Datentyp", "data type"),
    _f("metrics[].value", MEAS, NO, "Messwert", "metric value"),
    notes="DATA messages can only be read with the preceding BIRTH (names, aliases, types).",
)

_SMART_METER = _p(
    "smart_meter",
    "Stromzähler (Tasmota)",
    "smart meter (Tasmota)",
    ("{topic}/tele/SENSOR", "tele/{topic}/SENSOR"),
    _f("$topic.topic", ID, DIRECT, "Zählername (Topic)", "meter topic name"),
    _f("Time", TS, NO, "Messzeitpunkt (Ortszeit)", "time of measurement (local)", treatment=KEEP),
    _f("ENERGY.TotalStartTime", TS, NO, "Zählbeginn", "counting since", treatment=KEEP),
    _f(
        "ENERGY.Total",
        ENERGY,
        INDIRECT,
        "Zählerstand",
        "meter reading",
        treatment=ROUND,
        detail="1",
    ),
    _f("ENERGY.Yesterday", ENERGY, INDIRECT, "Verbrauch gestern", "use yesterday", treatment=KEEP),
    _f(
        "ENERGY.Today",
        ENERGY,
        INDIRECT,
        "Verbrauch heute",
        "use today",
        treatment=ROUND,
        detail="1",
    ),
    _f(
        "ENERGY.Period",
        ENERGY,
        INDIRECT,
        "Verbrauch seit der letzten Meldung",
        "use since the last report",
    ),
    _f("ENERGY.Power", ENERGY, INDIRECT, "aktuelle Leistung", "current power"),
    _f("ENERGY.Current", ENERGY, INDIRECT, "Stromstärke", "current"),
    _f("METER.PH", TECH, NO, "Anzahl Phasen", "number of phases"),
    _f("METER.ISUB", TECH, NO, "vertragliche Stromstärke", "contracted current"),
    _f("METER.PSUB", TECH, NO, "vertragliche Leistung", "contracted power"),
    _f("METER.PMAX", TECH, NO, "Höchstleistung", "maximum power"),
    _f("METER.U1", MEAS, NO, "Spannung Phase 1", "voltage phase 1"),
    _f("METER.P1", ENERGY, INDIRECT, "Leistung Phase 1", "power phase 1"),
    _f("METER.W1", ENERGY, INDIRECT, "Wirkleistung Phase 1", "active power phase 1"),
    _f("METER.I1", ENERGY, INDIRECT, "Stromstärke Phase 1", "current phase 1"),
    _f("METER.C1", TECH, NO, "Leistungsfaktor Phase 1", "power factor phase 1"),
    _f("METER.P", ENERGY, INDIRECT, "Leistung", "power"),
    _f("METER.W", ENERGY, INDIRECT, "Wirkleistung", "active power"),
    _f("METER.I", ENERGY, INDIRECT, "Stromstärke", "current"),
    _f("IP", NET, DIRECT, "IP-Adresse im Heimnetz", "IP address in the home network"),
    _f("MAC", ID, DIRECT, "MAC-Adresse", "MAC address"),
    notes="Household consumption is personal data in EU practice: it reveals daily routines.",
)

_EV_CHARGER = _p(
    "ev_charger",
    "Wallbox (OpenEVSE)",
    "EV charger (OpenEVSE)",
    (
        "openevse/announce/{suffix}",
        "openevse-{suffix}/{metric}",
        "emon/openevse-{suffix}/{metric}",
    ),
    _f("$topic.suffix", ID, DIRECT, "Gerätekennung (Ende der ID)", "device identifier (end of ID)"),
    _f("$topic.metric", TECH, NO, "Messgröße", "reading"),
    _f(
        "$payload",
        ENERGY,
        INDIRECT,
        "Ladewert (Strom, Energie, Status)",
        "charging reading (current, energy, state)",
        treatment=KEEP,
        topics=("openevse-{suffix}/{metric}", "emon/openevse-{suffix}/{metric}"),
    ),
    _f("state", TECH, NO, "Verbindungsstatus", "connection state"),
    _f("id", ID, DIRECT, "Geräte-ID", "device ID"),
    _f("name", ID, DIRECT, "Gerätename (Hostname)", "device name (host name)"),
    _f("mqtt", ID, INDIRECT, "Basis-Topic", "base topic", treatment=WITHHOLD),
    _f("http", NET, DIRECT, "Adresse im Heimnetz", "address in the home network"),
    notes="Charging sessions reveal when someone is at home; announce reveals the LAN address.",
)

_BLE_PRESENCE = _p(
    "ble_presence",
    "Bluetooth-Anwesenheit (OpenMQTTGateway)",
    "Bluetooth presence (OpenMQTTGateway)",
    ("home/{gw}/BTtoMQTT/{mac}", "home/{gw}/LWT"),
    _f("$topic.gw", TECH, NO, "Name des Gateways", "gateway name"),
    _f("$topic.mac", ID, DIRECT, "Bluetooth-MAC-Adresse", "Bluetooth MAC address"),
    _f("$payload", TECH, NO, "Verbindungsstatus", "connection status", topics=("home/{gw}/LWT",)),
    _f("id", ID, DIRECT, "Bluetooth-MAC-Adresse", "Bluetooth MAC address"),
    _f("name", ID, DIRECT, "Bluetooth-Gerätename", "Bluetooth device name"),
    _f("rssi", PRES, DIRECT, "Signalstärke (Nähe)", "signal strength (proximity)"),
    _f("distance", PRES, DIRECT, "Entfernung zum Gateway", "distance to the gateway"),
    _f("servicedata", RAW, INDIRECT, "Dienstdaten (roh)", "service data (raw)"),
    _f("tempc", MEAS, NO, "Temperatur (°C)", "temperature (°C)"),
    _f("tempf", MEAS, NO, "Temperatur (°F)", "temperature (°F)"),
    _f("hum", MEAS, NO, "Luftfeuchte", "humidity"),
    notes="A carried beacon, phone or wearable near a gateway means a person is there.",
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        p.name: p
        for p in (
            _OWNTRACKS,
            _ZIGBEE2MQTT,
            _TASMOTA,
            _HOMEASSISTANT,
            _SHELLY_GEN2,
            _TTN_V3,
            _SPARKPLUG_B,
            _SMART_METER,
            _EV_CHARGER,
            _BLE_PRESENCE,
        )
    }
)


def profile(name: str) -> Profile:
    """The profile called ``name``; raises ``UnknownProfile`` naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(name, tuple(sorted(PROFILES))) from None


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise UnknownLanguage(lang, LANGUAGES)


def label(profile_name: str, path: str, lang: str) -> str | None:
    """The label of ``path`` in ``profile_name`` in language ``lang``; None for unknown paths."""
    _check_lang(lang)
    f = profile(profile_name).field(path)
    return None if f is None else f.labels[lang]


def category_label(category: Category, lang: str) -> str:
    _check_lang(lang)
    return _CATEGORY_LABELS[category][lang]


_ORDER = {DIRECT: 0, INDIRECT: 1, NO: 2}


def suggestions(profile_name: str) -> list[Suggestion]:
    """Suggested treatments for every field, direct personal data first, then indirect."""
    p = profile(profile_name)
    out = []
    for f in sorted(p.fields, key=lambda f: _ORDER[f.personal]):
        default_treatment, _, rationale = _DEFAULTS[f.category]
        if f.treatment is not default_treatment:
            rationale = _TREATMENT_RATIONALE[f.treatment]
        out.append(Suggestion(f.path, f.category, f.personal, f.treatment, f.detail, rationale))
    return out
