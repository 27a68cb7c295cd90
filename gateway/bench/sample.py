"""A realistic, reproducible log for the TUI benchmark (``python -m gateway.bench.tui``).

It lives with the benchmarks because ``einblick bench`` ships with the product; the TUI's tests
and snapshots use the same generator, so they and the benchmark figures describe one log.

Three customers from ``policies/examples`` (a bakery, a van fleet, a law office), their devices
and recipients; each entry is a ``policies.decision.Decision`` written through the real
``LogWriter`` with German and English explanations, so the TUI reads exactly what the gateway
writes. The same ``seed`` and ``start`` always give the same log (entry hashes differ only by the
signing key, which is generated per database).
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.batches import commit_batch
from gateway.log.entry import EntryDraft, draft_from_decision
from gateway.log.keys import Signer
from gateway.log.schema import ensure_schema
from gateway.log.synthetic import preset_subject_keys
from gateway.log.writer import LogWriter
from gateway.messages.store import connect
from policies.decision import Alteration, Decision, LegalBasis, Outcome, Reason
from tui.model import Names

__all__ = ["NAMES", "ORIGIN", "T0", "SampleLog", "decisions"]

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
ORIGIN = "edge-01"

NAMES = Names(
    devices={
        "oven-1": "Backofen 1",
        "oven-2": "Backofen 2",
        "back-door": "Hintertür (Kartenleser)",
        "van-01": "Lieferwagen 1 (B-SW 101)",
        "van-02": "Lieferwagen 2 (B-SW 102)",
        "meeting-room": "Meeting room occupancy sensor",
        "floor-meter": "Floor energy meter",
    },
    recipients={
        "oven-maker": "Ofenbau Müller GmbH – Wartungscloud",
        "logistics": "TransLog Plattform",
        "energy-provider": "Stadtwerke Energie",
    },
    customers={
        "baeckerei-schmidt": "Bäckerei Schmidt",
        "spedition-weber": "Spedition Weber",
        "berg-partner": "Berg & Partner Rechtsanwälte",
    },
)

_MAINT = {
    "de": "Fernwartung und Störungsdiagnose der Backöfen",
    "en": "Remote maintenance and fault diagnosis of the ovens",
}
_TRACK = {
    "de": "Lieferzeiten für Kundinnen und Kunden vorhersagen",
    "en": "Predicting delivery times for customers",
}
_EVENTS = {
    "de": "Ankunft und Abfahrt an Depots melden",
    "en": "Reporting arrivals at and departures from depots",
}
_BILLING = {"de": "Abrechnung des Stromverbrauchs", "en": "Billing of electricity use"}


@dataclass(frozen=True, slots=True)
class _Made:
    decision: Decision
    text_de: str
    text_en: str
    source: bytes


def _oven(rng: random.Random, device: str) -> _Made:
    temp = round(rng.uniform(170, 240), 1)
    source = orjson.dumps(
        {"ts": 0, "temperature": temp, "setpoint": 220, "serial": "SN-4471", "door_open": False}
    )
    payload = orjson.dumps(
        {
            "ts": 0,
            "temperature": round(temp * 2) / 2,
            "setpoint": 220,
            "serial": "p:9f2c41",
            "door_open": False,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    name = NAMES.device(device)
    decision = Decision(
        customer="baeckerei-schmidt",
        device=device,
        recipient="oven-maker",
        outcome=Outcome.ALTERED,
        grant="maintenance",
        policy_version="sha256:5d1e0c7a",
        purpose=_MAINT,
        legal_basis=LegalBasis.CONTRACT,
        topic=f"ovens/baeckerei-schmidt/{device}/telemetry",
        payload=payload,
        shared=("setpoint", "door_open"),
        altered=(
            Alteration("temperature", "round", "0.5"),
            Alteration("serial", "pseudonymise", ""),
            Alteration("ts", "truncate", "minute"),
        ),
        withheld=(),
    )
    de = (
        f"{name} hat Temperatur, Sollwert und Türstatus an Ofenbau Müller GmbH geschickt. "
        "Zweck: Fernwartung und Störungsdiagnose der Backöfen; Grundlage: Vertrag. "
        "Die Temperatur wurde auf 0,5 °C gerundet, die Seriennummer pseudonymisiert und die "
        "Zeit auf die Minute gekürzt (Freigabe „maintenance“)."
    )
    en = (
        f"{name} sent temperature, setpoint and door state to Ofenbau Müller GmbH. "
        "Purpose: remote maintenance and fault diagnosis of the ovens; basis: contract. "
        "The temperature was rounded to 0.5 °C, the serial number pseudonymised and the time "
        "truncated to the minute (grant “maintenance”)."
    )
    return _Made(decision, de, en, source)


def _badge(rng: random.Random) -> _Made:
    source = orjson.dumps({"badge": f"B-{rng.randrange(1000, 9999)}", "door": "back"})
    decision = Decision(
        customer="baeckerei-schmidt",
        device="back-door",
        recipient="oven-maker",
        outcome=Outcome.WITHHELD,
        policy_version="sha256:5d1e0c7a",
        withheld=("badge", "door"),
        reason=Reason("no_grant"),
    )
    de = (
        "Hintertür (Kartenleser): nichts wurde an Ofenbau Müller GmbH gesendet. "
        "Keine Freigabe erlaubt diesem Empfänger die Ausweisnummern; sie bleiben im Haus."
    )
    en = (
        "Back door (badge reader): nothing was sent to Ofenbau Müller GmbH. "
        "No grant allows this recipient the badge numbers; they stay on site."
    )
    return _Made(decision, de, en, source)


def _van(rng: random.Random, device: str, withdrawn: bool) -> _Made:
    lat, lon = rng.uniform(52.45, 52.56), rng.uniform(13.3, 13.5)
    if rng.random() < 0.25:
        source = orjson.dumps({"_type": "transition", "event": "enter", "desc": "Depot Nord"})
        if withdrawn:
            decision = Decision(
                customer="spedition-weber",
                device=device,
                recipient="logistics",
                outcome=Outcome.WITHHELD,
                grant="driver-events",
                policy_version="sha256:a08b3f11",
                purpose=_EVENTS,
                withheld=("_type", "event", "desc"),
                reason=Reason("withdrawn"),
            )
            de = (
                f"{NAMES.device(device)}: nichts an TransLog Plattform gesendet. "
                "Die Einwilligung für „Ankunft und Abfahrt an Depots melden“ wurde widerrufen."
            )
            en = (
                f"{NAMES.device(device)}: nothing sent to TransLog Plattform. "
                "The consent for “Reporting arrivals at and departures from depots” was withdrawn."
            )
            return _Made(decision, de, en, source)
        decision = Decision(
            customer="spedition-weber",
            device=device,
            recipient="logistics",
            outcome=Outcome.SHARED,
            grant="driver-events",
            policy_version="sha256:a08b3f11",
            purpose=_EVENTS,
            legal_basis=LegalBasis.CONSENT,
            topic=f"fleet/spedition-weber/{device}/driver/p:7c1d/event",
            payload=source,
            shared=("_type", "event", "desc"),
        )
        de = (
            f"{NAMES.device(device)} hat die Ankunft am Depot Nord an TransLog Plattform gemeldet. "
            "Zweck: Ankunft und Abfahrt an Depots melden; Grundlage: Einwilligung."
        )
        en = (
            f"{NAMES.device(device)} reported the arrival at Depot Nord to TransLog Plattform. "
            "Purpose: reporting arrivals at and departures from depots; basis: consent."
        )
        return _Made(decision, de, en, source)
    source = orjson.dumps({"_type": "location", "lat": lat, "lon": lon, "vel": 42, "batt": 81})
    payload = orjson.dumps(
        {"_type": "location", "lat": round(lat, 2), "lon": round(lon, 2), "vel": 42, "batt": 81},
        option=orjson.OPT_SORT_KEYS,
    )
    decision = Decision(
        customer="spedition-weber",
        device=device,
        recipient="logistics",
        outcome=Outcome.ALTERED,
        grant="delivery-tracking",
        policy_version="sha256:a08b3f11",
        purpose=_TRACK,
        legal_basis=LegalBasis.LEGITIMATE_INTERESTS,
        topic=f"fleet/spedition-weber/{device}/position",
        payload=payload,
        shared=("_type", "vel", "batt"),
        altered=(Alteration("lat", "coarsen", "500 m"),),
        withheld=("acc", "tid"),
    )
    de = (
        f"{NAMES.device(device)} hat die Position (auf 500 m vergröbert), Tempo und Akku an "
        "TransLog Plattform geschickt. Zweck: Lieferzeiten vorhersagen; Grundlage: berechtigtes "
        "Interesse. Genauigkeit und Kürzel des Fahrers wurden zurückgehalten."
    )
    en = (
        f"{NAMES.device(device)} sent its position (coarsened to 500 m), speed and battery to "
        "TransLog Plattform. Purpose: predicting delivery times; basis: legitimate interests. "
        "Accuracy and the driver's initials were withheld."
    )
    return _Made(decision, de, en, source)


def _meter(rng: random.Random) -> _Made:
    power = rng.randrange(800, 4000)
    source = orjson.dumps({"ENERGY": {"Power": power, "Total": 1234.5}})
    decision = Decision(
        customer="berg-partner",
        device="floor-meter",
        recipient="energy-provider",
        outcome=Outcome.SHARED,
        grant="energy-billing",
        policy_version="sha256:c3e9d2aa",
        purpose=_BILLING,
        legal_basis=LegalBasis.CONTRACT,
        topic="energy/berg-partner/floor-meter",
        payload=orjson.dumps({"ENERGY": {"Total": 1234.5}}),
        shared=("ENERGY.Total",),
        withheld=("ENERGY.Power",),
    )
    de = (
        "Der Stromzähler der Etage hat den Zählerstand an Stadtwerke Energie gesendet. "
        "Zweck: Abrechnung; Grundlage: Vertrag. Die momentane Leistung wurde zurückgehalten."
    )
    en = (
        "The floor energy meter sent its meter reading to Stadtwerke Energie. "
        "Purpose: billing; basis: contract. The momentary power was withheld."
    )
    return _Made(decision, de, en, source)


def _occupancy(rng: random.Random) -> _Made:
    source = orjson.dumps({"occupancy": rng.random() < 0.5, "battery": 90})
    decision = Decision(
        customer="berg-partner",
        device="meeting-room",
        recipient="energy-provider",
        outcome=Outcome.WITHHELD,
        grant="demand-heating",
        policy_version="sha256:c3e9d2aa",
        withheld=("occupancy", "battery"),
        reason=Reason("outside_hours"),
    )
    de = (
        "Meeting room occupancy sensor: nichts an Stadtwerke Energie gesendet. "
        "Die Freigabe gilt nur 07:00–19:00 Uhr."
    )
    en = (
        "Meeting room occupancy sensor: nothing sent to Stadtwerke Energie. "
        "The grant only applies 07:00–19:00."
    )
    return _Made(decision, de, en, source)


def decisions(seed: int = 7, *, withdrawn: bool = False) -> Iterator[_Made]:
    """An endless, reproducible stream of decisions across the three customers."""
    rng = random.Random(seed)
    while True:
        roll = rng.random()
        if roll < 0.35:
            yield _oven(rng, rng.choice(("oven-1", "oven-2")))
        elif roll < 0.45:
            yield _badge(rng)
        elif roll < 0.75:
            yield _van(rng, rng.choice(("van-01", "van-02")), withdrawn)
        elif roll < 0.9:
            yield _meter(rng)
        else:
            yield _occupancy(rng)


class SampleLog:
    """A log database written through the real ``LogWriter``, committed like the gateway."""

    def __init__(self, path: Path, *, seed: int = 7) -> None:
        self.path = path
        self.conn: sqlite3.Connection = connect(path)
        ensure_schema(self.conn)
        # Reproducible to the byte: a signing key and per-device subject keys derived from the
        # seed (the writer would draw subject keys at random; it uses stored ones when present).
        seed_bytes = hashlib.sha256(b"einblick-sample/%d" % seed).digest()
        self.signer = Signer(Ed25519PrivateKey.from_private_bytes(seed_bytes))
        self._seed_subject_keys(seed_bytes)
        self.writer = LogWriter(self.conn, self.signer, ORIGIN)
        self._stream = decisions(seed)
        self._withdrawn_stream = decisions(seed + 1, withdrawn=True)
        self.written = 0

    def _seed_subject_keys(self, seed: bytes) -> None:
        def key_for(customer: str, subject: str) -> bytes:
            return hashlib.sha256(seed + f"/{customer}/{subject}".encode()).digest()

        preset_subject_keys(
            self.conn, list(NAMES.customers), [*NAMES.devices, *NAMES.recipients], key_for
        )

    def drafts(
        self, n: int, start: datetime, step: timedelta, *, withdrawn: bool = False
    ) -> list[EntryDraft]:
        stream = self._withdrawn_stream if withdrawn else self._stream
        out = []
        for i in range(n):
            made = next(stream)
            out.append(
                draft_from_decision(
                    made.decision,
                    at=start + step * i,
                    source_digest=hashlib.sha256(made.source).digest(),
                    text_de=made.text_de,
                    text_en=made.text_en,
                )
            )
        return out

    def write(self, drafts: list[EntryDraft], *, checkpoint: bool = True) -> None:
        """One transaction, like one batch of the gateway's writer; then a signed checkpoint."""
        if not drafts:
            return
        at = max(d.at for d in drafts) + timedelta(milliseconds=1) if checkpoint else None
        commit_batch(self.conn, self.writer, drafts, at)
        self.written += len(drafts)

    def add(
        self,
        n: int,
        start: datetime = T0,
        step: timedelta = timedelta(seconds=2),
        *,
        batch: int = 1000,
        withdrawn: bool = False,
    ) -> None:
        """Append ``n`` entries from ``start``, ``step`` apart, in batches of ``batch``."""
        done = 0
        while done < n:
            take = min(batch, n - done)
            self.write(self.drafts(take, start + step * done, step, withdrawn=withdrawn))
            done += take

    def close(self) -> None:
        self.conn.close()
