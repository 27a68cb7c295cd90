"""The customer's report (Art. 15/20) and the records of processing (Art. 30)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.cli import main
from gateway.config import load_config
from gateway.locale import CATALOGS
from gateway.log.keys import load_public_key
from gateway.operations.control import request
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights.records import build_records, render_records
from gateway.rights.report import build_report, render
from tests.gateway.harness import running_gateway

POLICY = """
einblick_policy: 1
customer: mueller-soehne
name: "Müller <b>&</b> Söhne"
language: de
devices:
  - id: meter-1
    name: Zähler Keller
    kind: meter
    topics:
      - pattern: "meters/meter-1"
        stream: telemetry
  - id: door
    name: Haustür
    kind: lock
    topics:
      - pattern: "locks/door"
        stream: events
grants:
  - id: energy-advice
    recipient: energy-provider
    purpose: {de: "Energieberatung", en: "Energy advice"}
    legal_basis: consent
    consent: {given_by: "Jana Müller", given_at: 2026-01-01T00:00:00Z}
    devices: [meter-1]
    topic: "advice/{device}"
    fields:
      power: {round: 10}
      total: keep
"""
DEVICES = [("mueller-soehne", "meter-1", "Zähler Keller"), ("mueller-soehne", "door", "Haustür")]


async def test_report_says_what_went_where_in_german_and_english(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"mueller.yaml": POLICY}, DEVICES) as h:
        meter = await h.device("mueller-soehne", "meter-1")
        door = await h.device("mueller-soehne", "door")
        for i in range(3):
            payload = {"power": 1234 + i, "total": 100 + i, "owner": "Jana Müller"}
            await meter.publish("meters/meter-1", orjson.dumps(payload), 1)
        await door.publish("locks/door", orjson.dumps({"state": "open", "who": "Jana"}), 1)
        await h.cloud.wait_for(3)
        socket = h.gateway.config.control_socket
        await request(
            socket, "withdraw", customer="mueller-soehne", grant="energy-advice", by="Jana Müller"
        )
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1, "total": 1}), 1)
        await h.wait_committed(5)
        await request(socket, "forget", customer="mueller-soehne", device="door", by="Jana Müller")
        await meter.close()
        await door.close()
        config = h.gateway.config
        policy = next(p for p in h.gateway.engine.policies() if p.customer == "mueller-soehne")
    public_key = load_public_key(config.data_path / "keys" / "signing.pub")
    data = build_report(
        config.database_path,
        "mueller-soehne",
        policy=policy,
        recipients=config.recipient_names(),
        public_key=public_key,
        now=datetime.now(UTC),
    )
    assert data["verification"]["ok"] and data["verification"]["pinned"]
    assert data["verification"]["unsigned"] == 0
    devices = {d["id"]: d for d in data["devices"]}
    assert devices["meter-1"]["shared"] + devices["meter-1"]["altered"] == 3
    assert devices["meter-1"]["withheld"] == 1  # after the withdrawal
    (provider,) = data["recipients"]
    assert provider["id"] == "energy-provider" and provider["messages"] == 3
    fields = {(f["field"], f["treatment"]): f["count"] for f in provider["fields"]}
    assert fields == {("power", "round"): 3, ("total", "keep"): 3}
    never = {n["device"]: n for n in data["never_shared"]}
    assert "owner" in never["meter-1"]["fields"]
    assert never["door"]["nothing_left"]
    actions = [(c["action"], c["by"]) for c in data["consents"]]
    assert actions == [("recorded", "Jana Müller"), ("withdrawn", "Jana Müller")]
    (erasure,) = data["erasures"]
    assert erasure["subject"] == "mueller-soehne/door" and erasure["requested_by"] == "Jana Müller"
    assert [r["reason"] for r in data["withheld"]].count("withdrawn") == 1

    german = render(data, "md", "de")
    english = render(data, "md", "en")
    assert "## Einwilligungen, Widersprüche und Einschränkungen" in german
    assert "hat die Einwilligung „energy-advice“ für Stadtwerke Energiedienst widerrufen" in german
    assert "auf Vielfache von 10 gerundet" in german
    assert "✓ Das Protokoll ist geprüft" in german
    assert "withdrew consent “energy-advice” for Stadtwerke Energiedienst" in english
    assert "never passed on to anyone: owner" in english
    assert "Haustür: nothing at all was passed on." in english
    # HTML: every value a person typed is escaped.
    page = render(data, "html", "en")
    assert "Müller &lt;b&gt;&amp;&lt;/b&gt; Söhne" in page
    assert "<b>&" not in page
    # The machine-readable export is the same data.
    assert orjson.loads(render(data, "json", "en")) == orjson.loads(orjson.dumps(data))

    # The command: JSON to a file, exit 0 while the log verifies …
    out = tmp_path / "report.json"
    args = ["report", "--config", str(config.source), "--customer", "mueller-soehne"]
    assert await asyncio.to_thread(main, [*args, "--format", "json", "--out", str(out)]) == 0
    assert orjson.loads(out.read_bytes())["format"] == "einblick-report/1"
    # … and a report on a tampered log says so, and exits 1.
    shutil.copyfile(config.database_path, tmp_path / "copy.db")
    conn = sqlite3.connect(tmp_path / "copy.db")
    conn.execute("UPDATE entries SET at = at + 1 WHERE seq = (SELECT min(seq) FROM entries)")
    conn.commit()
    conn.close()
    shutil.copyfile(tmp_path / "copy.db", config.database_path)
    broken = build_report(
        config.database_path,
        "mueller-soehne",
        policy=policy,
        recipients=config.recipient_names(),
        public_key=public_key,
        now=datetime.now(UTC),
    )
    assert not broken["verification"]["ok"]
    assert "✗ The log does NOT verify" in render(broken, "md", "en")
    assert await asyncio.to_thread(main, [*args, "--lang", "en"]) == 1


def test_records_are_generated_from_the_policies(tmp_path: Path) -> None:
    config = load_config(init_directory(InitOptions(directory=tmp_path / "edge")))
    from gateway.commands.rights import load_policies

    policies = load_policies(config)
    data = build_records(config, policies, now=datetime(2026, 5, 1, tzinfo=UTC))
    grants = {(a["customer"], a["grant"]) for a in data["activities"]}
    assert grants == {(p.customer, g.id) for p in policies for g in p.grants}
    by_grant = {a["grant"]: a for a in data["activities"]}
    # Categories come from the device profile where there is one …
    occupancy = next(a for a in data["activities"] if a["customer"] == "berg-partner" and any(
        c["category"] == "presence" for c in a["categories"]))  # fmt: skip
    assert occupancy["legal_basis"] == "consent" and occupancy["consent"] is not None
    # … and are the field names where the device has no profile.
    maintenance = by_grant["maintenance"]
    assert {c["category"] for c in maintenance["categories"]} == {None}
    assert "pseudonymise" in maintenance["safeguards"]
    assert maintenance["recipient_name"] == "Ofenbau Müller GmbH – Wartungscloud"
    german = render_records(data, "md", "de")
    assert german.startswith("# Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO)")
    assert "| Rechtsgrundlage | Vertragserfüllung (Art. 6 Abs. 1 lit. b DSGVO) |" in german
    assert "Anwesenheit (occupancy)" in german
    english = render_records(data, "md", "en")
    assert "| Categories of data |" in english and "presence (occupancy)" in english
    assert orjson.loads(render_records(data, "json", "en"))["format"] == "einblick-records/1"
    out = tmp_path / "records.json"
    code = main(["records", "--config", str(config.source), "--format", "json", "--out", str(out)])
    assert code == 0 and orjson.loads(out.read_bytes())["activities"]


def test_every_text_exists_in_german_and_english() -> None:
    assert set(CATALOGS["de"]) == set(CATALOGS["en"])
    assert all(CATALOGS["de"][k] != CATALOGS["en"][k] for k in CATALOGS["en"] if "report." in k)
