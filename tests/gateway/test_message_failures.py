"""A failure while handling one message withholds that message alone, says why, and acknowledges
it: the gateway keeps running and nothing comes back from the broker to fail again."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from gateway.log.entry import EntryDraft
from policies.decision import Decision
from policies.treatments import pseudonymise
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY, TRACKER, _reasons

OVEN = "bakery/oven-1/telemetry"
VAN = "owntracks/jan/van-7"
# The van's grant pseudonymises its tracker id: the first release makes a pseudonym key, which
# must be stored even when the batch it was made in failed and was committed again.
PSEUDONYMISING_TRACKER = TRACKER.replace(
    "      batt: keep\n", "      batt: keep\n      tid: pseudonymise\n"
)


async def test_a_message_that_fails_to_explain_or_to_append_is_withheld_and_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    devices = [("baeckerei-schmidt", "oven-1", "Backofen 1"), ("spedition-meier", "van-7", "Van 7")]
    async with running_gateway(
        tmp_path, {"bakery.yaml": BAKERY, "fleet.yaml": PSEUDONYMISING_TRACKER}, devices
    ) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        van = await h.device("spedition-meier", "van-7")
        engine, writer = h.gateway.engine, h.gateway.writer
        explain, append = engine.explain, writer.append

        # 1. Explaining the oven's decision fails (as building a 400 MB text once did).
        def failing_explain(decision: Decision, lang: str) -> str:
            if decision.device == "oven-1" and decision.grant is not None:
                raise MemoryError("explaining this decision ran out of memory")
            return explain(decision, lang)

        monkeypatch.setattr(engine, "explain", failing_explain)
        await oven.publish(OVEN, b'{"temperature": 181.0, "door_open": false}', 1)
        await h.wait_committed(1)
        monkeypatch.setattr(engine, "explain", explain)

        # 2. Appending fails for both devices' entries (a batch of both, or one each). The van's
        #    release made its first pseudonym key, which must still be stored with a later batch.
        def failing_append(drafts: Sequence[EntryDraft]) -> object:
            if any(d.device and d.reason != "internal_error" for d in drafts):
                raise RuntimeError("this entry cannot be appended")
            return append(drafts)

        monkeypatch.setattr(writer, "append", failing_append)
        await oven.publish(OVEN, b'{"temperature": 182.0, "door_open": false}', 1)
        await van.publish(VAN, b'{"_type": "location", "batt": 72, "tid": "J7"}', 1)
        await h.wait_committed(3)
        monkeypatch.setattr(writer, "append", append)

        # 3. Still running: the next oven message is decided and forwarded as usual.
        await oven.publish(OVEN, b'{"temperature": 183.0, "door_open": true}', 1)
        await van.publish(VAN, b'{"_type": "location", "batt": 73, "tid": "J7"}', 1)
        await h.cloud.wait_for(2)
        await h.wait_committed(5)
        assert not h.task.done()
        received = [(m.topic, orjson.loads(m.payload)) for m in h.cloud.received]
        key = h.gateway.keyring.key("spedition-meier", "logistics")
        assert key is not None
        assert received == [
            ("ovens/baeckerei-schmidt/oven-1", {"temperature": 183.0, "door_open": True}),
            ("fleet/van-7", {"batt": 73, "tid": pseudonymise("J7", key)}),
        ]
        await oven.close()
        await van.close()
        reasons = await _reasons(h.gateway.config.database_path)
        with sqlite3.connect(h.gateway.config.database_path) as conn:
            stored = conn.execute(
                "SELECT key FROM pseudonym_keys WHERE customer = ? AND recipient = ?",
                ("spedition-meier", "logistics"),
            ).fetchall()
        assert [bytes(k) for (k,) in stored] == [key]
    assert sorted(reasons) == [
        ("baeckerei-schmidt", "oven-1", "internal_error"),
        ("baeckerei-schmidt", "oven-1", "internal_error"),
        ("spedition-meier", "van-7", "internal_error"),
    ]
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in failures if r.exc_info] == [
        "MemoryError",
        "RuntimeError",
        "RuntimeError",
    ]
    assert {OVEN, VAN} == {t for r in failures for t in (OVEN, VAN) if t in r.getMessage()}
