"""Forgetting removes the names (invariant 6, issue #13 item 8): after ``einblick forget`` no page
of the log's database files and no new bundle holds the subject's display name, a person's name,
a device-chosen JSON key, a topic level or a payload value -- and the log and the new bundle still
verify. Real gateway, real Mosquitto, real SQLite files, the real CLI."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.cli import main
from gateway.log.bundle import verify_bundle
from gateway.log.keys import load_public_key
from gateway.log.reader import LogReader
from gateway.log.verify import verify_db
from gateway.operations.control import request
from gateway.rights.report import build_report, render
from tests.gateway.harness import Harness, running_gateway

CUSTOMER = "spedition-ost"
PLATE = "Kennzeichen B-EK 4711"  # the van's display name
POLICY = f"""
einblick_policy: 1
customer: {CUSTOMER}
name: Spedition Ost
language: de
devices:
  - id: van-7
    name: "{PLATE}"
    kind: tracker
    topics:
      - pattern: "fleet/van-7/{{trip}}"
        stream: location
  - id: van-8
    name: Transporter acht
    kind: tracker
    topics:
      - pattern: "fleet/van-8/{{trip}}"
        stream: location
grants:
  - id: dispatch
    recipient: logistics
    purpose: {{de: "Disposition", en: "Dispatch"}}
    legal_basis: consent
    consent: {{given_by: "the fleet manager", given_at: 2026-01-01T00:00:00Z}}
    devices: [van-7, van-8]
    topic: "dispatch/{{device}}/{{trip}}"
    topic_levels: {{trip: keep}}
    fields:
      pos: keep
"""
DEVICES = [(CUSTOMER, "van-7", PLATE), (CUSTOMER, "van-8", "Transporter acht")]
TRIP = "tour-Mauerpark-0815"  # a topic level the device chose
KEY = "fahrer_ostermann"  # a JSON key the device chose (withheld: the grant does not name it)
POSITION = "Lindenstrasse-2207"  # a payload value
PERSON = "Hildegard Kowalski"  # gave and withdrew consent
REQUESTER = "Jonas Brandt"  # asked for the van's erasure
OTHER = "Ulrike Sommer-Eck"  # van-8's value, which must stay until the customer is forgotten


def in_database(directory: Path, needle: bytes) -> list[str]:
    """The log's database files (main file, WAL, shared memory) holding ``needle``."""
    data = directory / "data"
    return sorted(
        p.name for p in data.glob("einblick.db*") if p.is_file() and needle in p.read_bytes()
    )


def in_bundle(bundle: bytes, needle: bytes) -> bool:
    """Whether the bundle holds ``needle``, as it stands or inside a base64 field (content
    records carry the topic and payload in base64)."""
    decoded = [
        base64.b64decode(str(value))
        for line in map(orjson.loads, bundle.splitlines())
        for key, value in line.items()
        if key in ("data", "content") and isinstance(value, str)
    ]
    return needle in bundle or any(needle in d for d in decoded)


async def export(h: Harness, out: Path) -> bytes:
    """``einblick export`` once a checkpoint covers every entry (signed within 0.2 s here)."""
    db = h.gateway.config.database_path
    async with asyncio.timeout(10):
        while verify_db(db).unsigned:
            await asyncio.sleep(0.05)
    config = str(h.gateway.config.source)
    code = await asyncio.to_thread(
        main, ["export", "--config", config, "--customer", CUSTOMER, "--out", str(out)]
    )
    assert code == 0
    return await asyncio.to_thread(out.read_bytes)


async def forget(h: Harness, device: str | None, by: str) -> None:
    fields = {"customer": CUSTOMER, "by": by} | ({} if device is None else {"device": device})
    answer = await request(h.gateway.config.control_socket, "forget", **fields)
    assert answer["scrubbed"] is True, answer


async def check(h: Harness, bundle: Path) -> None:
    """The database and the bundle verify, the bundle as a stranger checks it (exit 0)."""
    pub = h.directory / "data" / "keys" / "signing.pub"
    report = verify_db(h.gateway.config.database_path, public_key=load_public_key(pub))
    assert report.ok, report.summary()
    assert verify_bundle(await asyncio.to_thread(bundle.read_bytes), load_public_key(pub)).ok
    code = await asyncio.to_thread(main, ["verify", str(bundle), "--key", str(pub)])
    assert code == 0


async def test_forget_removes_names_keys_levels_and_values_from_every_page_and_bundle(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"ost.yaml": POLICY}, DEVICES) as h:
        db = h.gateway.config.database_path
        key = load_public_key(h.directory / "data" / "keys" / "signing.pub")
        control = h.gateway.config.control_socket
        van = await h.device(CUSTOMER, "van-7")
        other = await h.device(CUSTOMER, "van-8")
        for pos in (POSITION, POSITION + "-b"):
            await van.publish(f"fleet/van-7/{TRIP}", orjson.dumps({"pos": pos, KEY: 1}), 1)
        await other.publish("fleet/van-8/rueckfahrt", orjson.dumps({"pos": OTHER}), 1)
        await h.cloud.wait_for(3)
        for action in ("withdraw", "give"):
            await request(control, action, customer=CUSTOMER, grant="dispatch", by=PERSON)
        van_values = [PLATE, KEY, TRIP, POSITION]
        everything = [*van_values, PERSON, OTHER]

        bundle = await export(h, tmp_path / "before.bundle")
        for needle in everything:
            assert in_database(h.directory, needle.encode()), f"{needle} was never stored"
            assert in_bundle(bundle, needle.encode()), f"{needle} is not in the bundle"
        await check(h, tmp_path / "before.bundle")

        # The van is forgotten: its names, keys, levels and values leave; the customer's own
        # (the consent giver) and the other van's stay.
        await forget(h, "van-7", REQUESTER)
        bundle = await export(h, tmp_path / "device.bundle")
        for needle in van_values:
            assert in_database(h.directory, needle.encode()) == [], needle
            assert not in_bundle(bundle, needle.encode()), needle
        for needle in (PERSON, OTHER):
            assert in_database(h.directory, needle.encode()), f"{needle} must stay"
            assert in_bundle(bundle, needle.encode()), f"{needle} must stay in the bundle"
        await check(h, tmp_path / "device.bundle")

        # The customer is forgotten: the people named beside its entries leave too (the consent
        # giver, the earlier requester); the new erasure entry names its own requester.
        await forget(h, None, "Datenschutzteam")
        bundle = await export(h, tmp_path / "customer.bundle")
        for needle in [*everything, REQUESTER]:
            assert in_database(h.directory, needle.encode()) == [], needle
            assert not in_bundle(bundle, needle.encode()), needle
        await check(h, tmp_path / "customer.bundle")

        # What a reader shows for an erased entry says so, and is still proven.
        reader = await LogReader.open(db)
        try:
            rows = await reader.page(customer=CUSTOMER, limit=100)
        finally:
            await reader.close()
        decisions = [r for r in rows if r.kind == "decision"]
        assert decisions and all("erased on request" in r.text_en for r in decisions)
        (latest,) = [r for r in rows if r.kind == "erasure" and "Datenschutzteam" in r.text_en]
        assert latest.text_de  # the newest erasure entry is readable in full
        # The customer's report still lists the consent events, without the name.
        policy = next(p for p in h.gateway.engine.policies() if p.customer == CUSTOMER)
        data = build_report(
            db,
            CUSTOMER,
            policy=policy,
            recipients=h.gateway.config.recipient_names(),
            public_key=key,
            now=datetime.now(UTC),
        )
        english = render(data, "md", "en")
        assert "a person (name erased) withdrew consent" in english
        assert PERSON not in english and PERSON not in render(data, "md", "de")
        await van.close()
        await other.close()


async def test_forget_on_a_stopped_gateway_removes_the_names_too(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"ost.yaml": POLICY}, DEVICES) as h:
        van = await h.device(CUSTOMER, "van-7")
        await van.publish(f"fleet/van-7/{TRIP}", orjson.dumps({"pos": POSITION, KEY: 1}), 1)
        await h.cloud.wait_for(1)
        await van.close()
        config = str(h.gateway.config.source)
        directory = h.directory
        db = h.gateway.config.database_path
    for needle in (PLATE, KEY, TRIP, POSITION):
        assert in_database(directory, needle.encode()), f"{needle} was never stored"
    code = await asyncio.to_thread(
        main,
        [
            "forget",
            "--config",
            config,
            "--customer",
            CUSTOMER,
            "--device",
            "van-7",
            "--by",
            REQUESTER,
        ],
    )
    assert code == 0
    for needle in (PLATE, KEY, TRIP, POSITION):
        assert in_database(directory, needle.encode()) == [], needle
    report = verify_db(db, public_key=load_public_key(directory / "data" / "keys" / "signing.pub"))
    assert report.ok, report.summary()
