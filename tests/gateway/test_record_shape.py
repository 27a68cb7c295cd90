"""One record shape from decision to entry (gateway/messages/drafting.py, gateway/log/writer.py):
a device's message is digested once however many recipients it is decided for, the decision is
keyed once and the writer finds the entry's body under that key, and the bytes written are the
same as for a draft keyed by its fields."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.log import writer as writer_module
from gateway.log.entry import EntryDraft, draft_from_decision
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages import pipeline as pipeline_module
from gateway.messages.drafting import Drafter
from gateway.messages.intake import Arrival
from gateway.messages.store import Store
from policies.decision import Outcome
from tests.gateway.fake_link import FakeLink
from tests.gateway.test_drafting import NOW, _decision, _engine
from tests.gateway.test_sendtime import open_bench

TOPIC = "bakery/oven-1/telemetry"
# One device, two recipients: each message is decided twice.
TWO_RECIPIENTS = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - pattern: "bakery/oven-1/telemetry"
        stream: telemetry
grants:
  - id: maintenance
    recipient: oven-maker
    purpose: {de: "Fernwartung", en: "Remote maintenance"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}"
    fields:
      temperature: {round: 0.5}
  - id: energy
    recipient: utility
    purpose: {de: "Energieberatung", en: "Energy advice"}
    legal_basis: contract
    devices: [oven-1]
    topic: "energy/{customer}/{device}"
    fields:
      door_open: keep
"""
RECIPIENTS = {"oven-maker": "Ofenbau Müller", "utility": "Stadtwerke"}


async def test_a_message_for_two_recipients_is_digested_once_and_its_bodies_keyed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digested: list[bytes] = []

    def sha256(data: bytes) -> hashlib._Hash:
        digested.append(data)
        return hashlib.sha256(data)

    monkeypatch.setattr(pipeline_module, "hashlib", SimpleNamespace(sha256=sha256))
    keyed: list[object] = []
    body_key = writer_module.body_key
    monkeypatch.setattr(writer_module, "body_key", lambda d: keyed.append(d) or body_key(d))
    link = FakeLink()
    payload = b'{"temperature": 180.2, "door_open": false}'
    messages = [link.deliver(TOPIC, payload), link.deliver(TOPIC, payload)]

    def entries(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
        return conn.execute("SELECT body_id, source FROM entries ORDER BY seq").fetchall()

    async with open_bench(tmp_path, TWO_RECIPIENTS, NOW, RECIPIENTS) as bench:
        await bench.pipeline.process([Arrival(m) for m in messages])
        written = await bench.store.read(entries)
    assert len(written) == 4  # two messages, each decided for two recipients
    assert digested == [payload, payload]  # once per message, not once per recipient
    assert keyed == []  # the writer used the decision's key from the drafter
    assert len({body for body, _ in written}) == 2  # one body per recipient's decision shape


async def test_a_draft_with_its_shape_is_written_as_the_same_draft_without_it(
    tmp_path: Path,
) -> None:
    # The key the draft carries changes nothing written: the entry gets the same stored body
    # (same id, same digest) as the draft keyed by its fields.
    engine = _engine()
    digest = hashlib.sha256(b"1").digest()
    shaped = Drafter().draft(engine, _decision(Outcome.SHARED), digest, NOW)
    assert shaped.shape is not None
    plain = draft_from_decision(
        _decision(Outcome.SHARED),
        at=NOW,
        source_digest=digest,
        text_de=shaped.text_de,
        text_en=shaped.text_en,
    )
    assert plain.shape is None and plain == shaped
    store = Store(tmp_path / "einblick.db")
    await store.open()
    writer = await store.read(lambda conn: LogWriter(conn, Signer.generate(), "unit"))
    for draft in (plain, shaped):  # the second misses the cache: its key is another object

        def job(conn: sqlite3.Connection, draft: EntryDraft = draft) -> None:
            writer.append([draft])

        await store.transaction(job, on_rollback=writer.rolled_back, on_commit=writer.committed)

    def bodies(conn: sqlite3.Connection) -> tuple[list[int], int]:
        used = [r[0] for r in conn.execute("SELECT body_id FROM entries ORDER BY seq")]
        return used, conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0]

    # Bodies are stored once per digest: the same id for both entries means the same bytes.
    used, stored = await store.read(bodies)
    assert len(used) == 2 and used[0] == used[1]
    assert stored == 1
    await store.close()
