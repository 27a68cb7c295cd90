"""Withdrawing consent: the next message is withheld, and so is everything still queued."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson

from gateway.log.keys import load_public_key
from gateway.log.reader import LogReader
from gateway.log.verify import verify_db
from gateway.messages.mqtt import MqttConnection
from gateway.operations.control import request
from gateway.rights.receipts import ReceiptInvalid, verify_receipt
from tests.gateway.harness import Harness, running_gateway

POLICY = """
einblick_policy: 1
customer: berg-partner
name: Berg & Partner
language: en
devices:
  - id: room-1
    name: Meeting room
    kind: occupancy
    topics:
      - pattern: "zigbee2mqtt/room-1"
        stream: telemetry
grants:
  - id: demand-heating
    recipient: energy-provider
    purpose: {de: "Heizung nach Belegung", en: "Heating by occupancy"}
    legal_basis: consent
    consent: {given_by: "Dr. Miriam Berg", given_at: 2026-03-01T09:00:00Z}
    devices: [room-1]
    topic: "building/{device}"
    fields:
      occupancy: keep
      seq: keep
"""


def depth(h: Harness) -> int:
    assert h.gateway.pipeline is not None
    return h.gateway.pipeline.stats.outbox_depth.get("energy-provider", 0)


async def queued_in_outage(h: Harness, waiting: int) -> MqttConnection:
    """The meeting room's first message forwarded, then the energy provider's cloud down and
    ``waiting`` more messages (seq 1 to ``waiting``) committed and queued for it; the room's
    connection, to publish on."""
    room = await h.device("berg-partner", "room-1")
    await room.publish("zigbee2mqtt/room-1", orjson.dumps({"occupancy": True, "seq": 0}), 1)
    await h.cloud.wait_for(1)
    await h.cloud.broker.stop()  # the energy provider's cloud goes down
    for seq in range(1, waiting + 1):
        await room.publish("zigbee2mqtt/room-1", orjson.dumps({"occupancy": True, "seq": seq}), 1)
    await h.wait_committed(waiting + 1)
    assert depth(h) == waiting
    return room


async def test_withdrawal_during_an_outage_holds_back_everything_queued(tmp_path: Path) -> None:
    async with running_gateway(
        tmp_path, {"berg.yaml": POLICY}, [("berg-partner", "room-1", "Meeting room")]
    ) as h:
        room = await queued_in_outage(h, 20)
        # The customer withdraws consent while 20 messages wait for the upstream.
        answer = await request(
            h.gateway.config.control_socket,
            "withdraw",
            customer="berg-partner",
            grant="demand-heating",
            by="Dr. Miriam Berg",
        )
        await room.publish("zigbee2mqtt/room-1", orjson.dumps({"occupancy": False, "seq": 21}), 1)
        await h.wait_committed(22)
        await h.cloud.broker.start()
        assert h.cloud.connection is not None
        await h.cloud.connection.close()
        h.cloud.received.clear()
        await h.cloud.listen()
        async with asyncio.timeout(15):
            while depth(h):
                await asyncio.sleep(0.05)
            while not h.gateway.forwarders["energy-provider"].state.connected:
                await asyncio.sleep(0.05)
        # The fence: the customer gives consent again and the room sends once more. The
        # forwarder sends its outbox in order, so had any of the 21 withheld messages been
        # published, it would have reached the cloud before this one.
        await request(
            h.gateway.config.control_socket,
            "give",
            customer="berg-partner",
            grant="demand-heating",
            by="Dr. Miriam Berg",
        )
        fence = {"occupancy": True, "seq": 22}
        await room.publish("zigbee2mqtt/room-1", orjson.dumps(fence), 1)
        await h.cloud.wait_for(1)
        received = [orjson.loads(m.payload) for m in h.cloud.received]
        assert received == [fence], "data under a withdrawn consent reached the recipient"
        assert h.gateway.forwarders["energy-provider"].state.withheld_at_send == 20
        await room.close()
        db = h.gateway.config.database_path
        public_key = load_public_key(h.directory / "data" / "keys" / "signing.pub")
    reader = await LogReader.open(db)
    try:
        rows = await reader.page(customer="berg-partner", limit=100)
        details = [await reader.get(r.seq) for r in reversed(rows)]
    finally:
        await reader.close()
    withdrawn = [d for d in details if d.row.outcome == "withheld" and d.reason == "withdrawn"]
    # 20 held at send time + the next message, each with the reason in its entry.
    assert len(withdrawn) == 21
    assert all("withdraw" in d.row.text_en.lower() for d in withdrawn)
    assert [d.row.kind for d in details].count("consent_withdrawn") == 1
    # Dated on the customer's clock (their policy's timezone, Europe/Berlin), zone named.
    consent = next(d for d in details if d.row.kind == "consent_withdrawn")
    assert re.search(r"am \d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d MES?Z widerrufen", consent.row.text_de)
    report = verify_db(db, public_key=public_key)
    assert report.ok, report.summary()
    # The receipt verifies offline with the public key; an altered one does not.
    receipt = answer["receipt"]
    assert verify_receipt(orjson.dumps(receipt), public_key).grant == "demand-heating"
    forged = {**receipt, "receipt": {**receipt["receipt"], "by": "someone else"}}
    try:
        verify_receipt(orjson.dumps(forged), public_key)
    except ReceiptInvalid as exc:
        assert "altered" in str(exc)
    else:
        raise AssertionError("an altered receipt verified")
