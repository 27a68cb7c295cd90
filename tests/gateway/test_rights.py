"""Forgetting (invariant 6): personal values leave every file the gateway writes, the proof stays,
recipients are told and their acknowledgements are tracked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.cli import main
from gateway.log.keys import load_public_key
from gateway.log.reader import LogReader
from gateway.log.verify import verify_db
from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection
from gateway.operations.control import request
from gateway.operations.status_text import render_status
from gateway.rights.receipts import verify_receipt
from tests.gateway.harness import Harness, running_gateway

POLICY = """
einblick_policy: 1
customer: familie-weber
name: Familie Weber
language: de
devices:
  - id: phone-anna
    name: Annas Telefon
    kind: tracker
    topics:
      - pattern: "owntracks/anna/phone"
        stream: location
  - id: phone-ben
    name: Bens Telefon
    kind: tracker
    topics:
      - pattern: "owntracks/ben/phone"
        stream: location
grants:
  - id: family-map
    recipient: logistics
    purpose: {de: "Familienkarte", en: "Family map"}
    legal_basis: consent
    consent: {given_by: "Anna Weber", given_at: 2026-01-01T00:00:00Z}
    devices: [phone-anna, phone-ben]
    topic: "family/{device}"
    fields:
      place: keep
      batt: keep
      badge: pseudonymise
"""
DEVICES = [
    ("familie-weber", "phone-anna", "Annas Telefon"),
    ("familie-weber", "phone-ben", "Bens Telefon"),
]
ANNA = "Sonnenblumenweg-4711"
BEN = "Kastanienallee-0099"


def files_containing(directory: Path, needle: bytes) -> list[str]:
    """Every file under ``directory`` whose bytes contain ``needle``."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and not p.is_socket() and needle in p.read_bytes()
    )


async def wait_until(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def restart_cloud(h: Harness) -> None:
    await h.cloud.broker.start()
    assert h.cloud.connection is not None
    await h.cloud.connection.close()
    h.cloud.received.clear()
    await h.cloud.listen()


async def test_forgetting_a_device_erases_its_values_everywhere_and_keeps_the_proof(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES) as h:
        anna = await h.device("familie-weber", "phone-anna")
        ben = await h.device("familie-weber", "phone-ben")
        # Anna's phone leaves a retained message on the device broker, then both share a place.
        await anna.publish(
            "owntracks/anna/phone", orjson.dumps({"place": ANNA, "batt": 90}), 1, retain=True
        )
        await ben.publish("owntracks/ben/phone", orjson.dumps({"place": BEN, "batt": 80}), 1)
        await h.cloud.wait_for(2)
        # The recipient goes offline; three more of Anna's places wait in the outbox.
        await h.cloud.broker.stop()
        for batt in (89, 88, 87):
            await anna.publish(
                "owntracks/anna/phone", orjson.dumps({"place": ANNA, "batt": batt}), 1
            )
        await h.wait_committed(5)
        # The device broker writes its persistence file now (what its autosave does each
        # second): the erasure below must also reach a file that holds the retained message.
        saved = h.directory / "data" / "broker" / "persistence" / "mosquitto.db"
        before = saved.stat().st_mtime_ns if saved.exists() else None
        assert h.gateway.broker is not None
        h.gateway.broker.save()
        await wait_until(lambda: saved.exists() and saved.stat().st_mtime_ns != before)
        assert files_containing(h.directory, ANNA.encode()), "the test value was never stored"

        answer = await request(
            h.gateway.config.control_socket,
            "forget",
            customer="familie-weber",
            device="phone-anna",
            by="Anna Weber",
        )
        assert answer["queued_erased"] == 3
        # The retained message is gone from the device broker: cleared by the periodic sweep
        # (gateway/messages/retained.py) or, if the erasure came first, by the erasure itself.
        assert answer["retained_cleared"] + h.gateway.retained.stats.cleared >= 1
        assert answer["content_erased"] >= 2
        assert answer["notified"] == ["logistics"]
        assert answer["scrubbed"] is True
        # The broker's next autosave (every second) rewrites its file without the retained
        # message; everything the gateway writes itself is clean at once.
        assert files_containing(h.directory / "data", ANNA.encode()) in (
            [],
            ["broker/persistence/mosquitto.db"],
        )
        await wait_until(lambda: files_containing(h.directory, ANNA.encode()) == [], timeout=10)
        assert files_containing(h.directory, BEN.encode()), "Ben's data must stay"

        # The recipient comes back: the notice arrives, the erased messages do not.
        await restart_cloud(h)
        await wait_until(
            lambda: any(m.topic.startswith("einblick/erasure/") for m in h.cloud.received)
        )
        assert not [m for m in h.cloud.received if m.topic.startswith("family/")]
        (notice,) = [m for m in h.cloud.received if m.topic == "einblick/erasure/familie-weber"]
        public_key = load_public_key(h.directory / "data" / "keys" / "signing.pub")
        signed = verify_receipt(notice.payload, public_key)
        assert (
            signed.fields["customer"] == "familie-weber" and signed.fields["device"] == "phone-anna"
        )
        for personal in (ANNA.encode(), b"Anna Weber", b"anna/phone"):
            assert personal not in notice.payload
        status = await request(h.gateway.config.control_socket, "status")
        assert [u["notice"] for u in status["erasures"]["unacknowledged"]] == [
            signed.fields["notice"]
        ]
        assert "erasures awaiting acknowledgement: 1" in render_status(status)

        # It acknowledges on its own broker; the gateway records the acknowledgement.
        recipient = MqttConnection(
            Endpoint("127.0.0.1", h.cloud.broker.settings.port, "logistics-app")
        )
        await recipient.open()
        await recipient.publish(
            signed.fields["acknowledge_to"], b'{"status": "erased"}', 1, retain=True
        )
        await recipient.close()

        async def acked() -> dict[str, object]:
            listed = await request(
                h.gateway.config.control_socket, "erasures", customer="familie-weber"
            )
            (erasure,) = listed["erasures"]
            (sent,) = erasure["notices"]
            return dict(sent)

        async with asyncio.timeout(10):
            while (await acked())["acknowledged_at"] is None:
                await asyncio.sleep(0.05)
        assert (await acked())["delivered"] is True
        status = await request(h.gateway.config.control_socket, "status")
        assert status["erasures"]["unacknowledged"] == []
        await anna.close()
        await ben.close()
        db = h.gateway.config.database_path

    report = verify_db(db, public_key=public_key)
    assert report.ok, report.summary()
    assert report.unsigned == 0
    reader = await LogReader.open(db)
    try:
        rows = await reader.page(customer="familie-weber", limit=100)
        (entry,) = [r for r in rows if r.kind == "erasure"]
        detail = await reader.get(entry.seq)
        anna_rows = [
            await reader.get(r.seq)
            for r in rows
            if r.device == "phone-anna" and r.kind == "decision"
        ]
    finally:
        await reader.close()
    assert detail.checkpoint is not None and detail.checkpoint.signature_valid
    assert detail.reason_params["requested_by"] == "Anna Weber"
    assert "Anna Weber" in detail.row.text_de and "phone-anna" in detail.row.text_en
    assert "3 messages still waiting to be sent" in detail.row.text_en
    assert anna_rows and all(d.content is None and d.topic is None for d in anna_rows)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    finally:
        conn.close()


async def test_forgetting_a_customer_destroys_its_pseudonym_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES) as h:
        # Whether the outbox counted an erasure as running when the erasure's transaction ran.
        quiet_then: list[bool] = []
        inner = h.gateway.store.transaction

        async def watched(job: Any, *args: Any, **kwargs: Any) -> Any:
            if "forget" in getattr(job, "__qualname__", ""):
                quiet_then.append(h.gateway.outbox.quiet.is_set())
            return await inner(job, *args, **kwargs)

        monkeypatch.setattr(h.gateway.store, "transaction", watched)
        anna = await h.device("familie-weber", "phone-anna")
        message = orjson.dumps({"place": "Park", "badge": "B-1234"})
        await anna.publish("owntracks/anna/phone", message, 1)
        await h.cloud.wait_for(1)
        before = h.cloud.payloads("family/")[0]["badge"]
        answer = await request(
            h.gateway.config.control_socket, "forget", customer="familie-weber", by="Anna Weber"
        )
        assert answer["keys_destroyed"] == 1
        # It ran inside the outbox's erasure bracket: forwarders published nothing meanwhile
        # and read again what they held (tests/gateway/test_forwarder.py).
        assert quiet_then == [False]
        assert h.gateway.outbox.erasures == 2 and h.gateway.outbox.quiet.is_set()
        await anna.publish("owntracks/anna/phone", message, 1)
        await wait_until(lambda: len(h.cloud.payloads("family/")) == 2)
        after = h.cloud.payloads("family/")[1]["badge"]
        assert before != after, "the pseudonym survived the erasure of its key"
        await anna.close()
        db = h.gateway.config.database_path
    assert verify_db(db).ok


async def test_forget_command_uses_the_running_gateway_or_the_database(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES) as h:
        config = str(h.gateway.config.source)
        ben = await h.device("familie-weber", "phone-ben")
        await ben.publish("owntracks/ben/phone", orjson.dumps({"place": BEN}), 1)
        await h.cloud.wait_for(1)
        await ben.close()
        # The gateway runs: the command asks it.
        code = await asyncio.to_thread(
            main,
            ["forget", "--config", config, "--customer", "familie-weber", "--device", "phone-ben",
             "--by", "Ben Weber"],
        )  # fmt: skip
        assert code == 0
        assert files_containing(h.directory, BEN.encode()) == []
        # An unknown device is a user mistake, said in one line.
        code = await asyncio.to_thread(
            main,
            [
                "forget",
                "--config",
                config,
                "--customer",
                "familie-weber",
                "--device",
                "nope",
                "--by",
                "x",
            ],
        )
        assert code == 2
        anna = await h.device("familie-weber", "phone-anna")
        await anna.publish("owntracks/anna/phone", orjson.dumps({"place": ANNA}), 1)
        await h.cloud.wait_for(3)  # Ben's place, the notice, Anna's place
        await anna.close()
        directory = h.directory
    # The gateway is stopped: the command erases on the database itself.
    code = await asyncio.to_thread(
        main, ["forget", "--config", config, "--customer", "familie-weber", "--by", "Anna Weber"]
    )
    assert code == 0
    assert files_containing(directory, ANNA.encode()) == []
    assert verify_db(directory / "data" / "einblick.db").ok
    conn = sqlite3.connect(directory / "data" / "einblick.db")
    try:
        queued = [bytes(p) for (p,) in conn.execute("SELECT payload FROM outbox")]
    finally:
        conn.close()
    (notice,) = queued  # waits for the next start of the gateway
    assert orjson.loads(notice)["receipt"]["scope"] == "customer"
