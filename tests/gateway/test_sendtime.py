"""Send time means the current policy (gateway/messages/sendtime.py): a real database, log writer
and pipeline decide a message; the policy, consents or the clock change while its row waits; the
send-time check then decides what leaves, and the log says so."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.log.entry import us_from_at
from gateway.log.keys import Signer
from gateway.log.reader import Reader
from gateway.log.writer import LogWriter
from gateway.messages import outbox
from gateway.messages.intake import Arrival
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.pipeline import Pipeline
from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import RecipientQueues
from gateway.messages.replays import ReplayCheck
from gateway.messages.retained import SweepStats
from gateway.messages.sendtime import SendParts, SendTime
from gateway.messages.store import Store
from policies.decision import Reason
from policies.engine import Engine
from tests.gateway.clocks import SetClock
from tests.gateway.fake_link import FakeLink
from tests.policies.conftest import compile_text

TOPIC = "bakery/oven-1/telemetry"
RECIPIENTS = {"oven-maker": "Ofenbau Müller", "energy": "Stadtwerke"}
POLICY = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
timezone: Europe/Berlin
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
    purpose: {de: "Fernwartung der Öfen", en: "Remote maintenance of the ovens"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}"
    hours: ["06:00-22:00"]
    fields:
      temperature: {round: 0.5}
      door_open: keep
"""
# Thursday 3 December 2026, 13:00 in Berlin: inside the grant's hours.
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@dataclass
class Bench:
    engine: Engine
    store: Store
    pipeline: Pipeline
    check: SendTime
    now: list[datetime]
    path: Path
    replays: ReplayCheck  # the pipeline's: retained messages on a new session already decided
    signer: Signer  # the log's key: its public half verifies the log (tests/faults/audit.py)
    clock: SetClock  # the pipeline's and the check's: ``behind`` sets the system clock back

    async def queued(self, payload: dict[str, object]) -> OutboxRow:
        link = FakeLink()
        await self.pipeline.process([Arrival(link.deliver(TOPIC, orjson.dumps(payload)))])
        rows = await self.store.read(
            functools.partial(outbox.pending, recipient="oven-maker", after=0, limit=10)
        )
        return rows[-1]

    async def texts(self, lang: str = "en") -> list[str]:
        """The text of every entry in ``lang``, in log order, through the log's one reader."""

        def job(conn: sqlite3.Connection) -> list[str]:
            reader = Reader.over(conn, self.path)
            lines = reader.lines(None, limit=10_000)
            return [reader.body(line.body_id).texts[lang] for line in lines]

        return await self.store.read(job)

    async def waiting(self) -> list[OutboxRow]:
        return await self.store.read(
            functools.partial(outbox.pending, recipient="oven-maker", after=0, limit=10)
        )

    async def waiting_all(self) -> list[OutboxRow]:
        return await self.store.read(
            functools.partial(outbox.pending, recipient="oven-maker", after=0, limit=100_000)
        )


@contextlib.asynccontextmanager
async def open_bench(
    tmp_path: Path, policy: str, at: datetime, recipients: dict[str, str] = RECIPIENTS
) -> AsyncIterator[Bench]:
    """A real store, log writer, outbox, pipeline and send-time check over ``policy``, with
    the clock at ``at`` (moved by the test through ``Bench.now``); ``recipients``: the names
    the policy's recipients have (id -> name)."""
    keyring = Keyring()
    engine = Engine([compile_text(policy, recipients)], keyring)
    store = Store(tmp_path / "einblick.db")
    await store.open()
    signer = Signer.generate()
    writer = await store.read(lambda conn: LogWriter(conn, signer, "unit"))
    box = Outbox(
        store,
        RecipientQueues(
            dict.fromkeys(recipients, "withhold"),
            max_rows_total=1000,
            max_rows=None,
            max_bytes=None,
            disk_share=0.5,
            disk=tmp_path,
        ),
        max_rows=1000,
    )
    now = [at]
    clock = SetClock(lambda: now[0])
    replays = ReplayCheck(lambda: engine, store, SweepStats())
    pipeline = Pipeline(
        engine=lambda: engine,
        store=store,
        log_writer=lambda: writer,
        keyring=keyring,
        topic_prefix={},
        queue_size=100,
        batch_max=100,
        max_payload_bytes=65536,
        outbox=box,
        clock=clock,
        replays=replays,
    )
    check = SendTime(
        SendParts(
            engine=lambda: engine,
            keyring=keyring,
            store=store,
            log_writer=lambda: writer,
            outbox=box,
            clock=clock,
            topic_prefix={},
        )
    )
    try:
        path = tmp_path / "einblick.db"
        yield Bench(engine, store, pipeline, check, now, path, replays, signer, clock)
    finally:
        await store.close()


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path, POLICY, NOON) as opened:
        yield opened


async def test_an_unchanged_row_leaves_as_decided_and_writes_nothing(bench: Bench) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    before = await bench.texts()
    bench.now[0] = NOON + timedelta(hours=2)
    settled = await bench.check.settle([row])
    assert settled.leave == [row] and settled.withheld == []
    assert await bench.texts() == before  # no re-decision, no entry: the cheap path


async def test_at_a_look_only_rows_that_leave_as_decided_pass_and_nothing_is_written(
    bench: Bench,
) -> None:
    """``settled_now``: the forwarder's check in the committing turn, with no transaction."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    before = await bench.texts()
    settled = bench.check.settled_now([row])
    assert settled is not None and settled.leave == [row] and settled.withheld == []
    bench.now[0] = datetime(2026, 12, 3, 21, 3, tzinfo=UTC)  # after the grant's hours
    assert bench.check.settled_now([row]) is None  # for ``settle``, which records why
    bench.now[0] = NOON
    assert bench.check.settled_now([row]) is not None
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    assert bench.check.settled_now([row]) is None
    assert await bench.texts() == before
    assert await bench.waiting() == [row]


def test_what_a_check_judged_by_moves_with_every_change_of_what_the_policies_release(
    bench: Bench,
) -> None:
    """A forwarder checks rows waiting for room again once this moved (forwarder._stale): a
    consent withdrawn or given again, an objection, a policy reloaded."""
    seen = [bench.check.checked()]
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    seen.append(bench.check.checked())
    bench.engine.give("baeckerei-schmidt", "maintenance", NOON)
    seen.append(bench.check.checked())
    bench.engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    seen.append(bench.check.checked())
    assert len(set(seen)) == 4
    assert bench.check.checked() == seen[-1]  # nothing changed: the rows checked stay good


async def test_rows_of_one_grant_are_judged_by_their_own_version(bench: Bench) -> None:
    """The check asks once per customer, grant and version in a batch: a row decided under an
    older version beside one decided under the running version is still decided again."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    old = dataclasses.replace(row, id=row.id + 1, version="an older version")
    assert bench.check.settled_now([row, row]) is not None
    assert bench.check.settled_now([row, old]) is None
    assert bench.check.settled_now([old, row]) is None


async def test_a_field_removed_from_the_grant_is_not_sent(bench: Bench) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    assert orjson.loads(row.payload) == {"temperature": 180.0, "door_open": True}
    newer = compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS)
    bench.engine.replace(newer)
    settled = await bench.check.settle([row])
    (sent,) = settled.leave
    assert orjson.loads(sent.payload) == {"temperature": 180.0}
    assert sent.id == row.id and sent.version == newer.version and sent.entry_seq > row.entry_seq
    # The outbox holds what leaves, so a crash before PUBACK resends the new decision.
    assert [orjson.loads(r.payload) for r in await bench.waiting()] == [{"temperature": 180.0}]
    last = (await bench.texts())[-1]
    assert last.startswith(
        f"Re-decided at send time under version {newer.version[:12]} of the policy, because it "
        "had changed since the decision."
    ), last
    assert "door_open" in last  # the new explanation names the field now kept back
    # Decided again once: a second check of the new row is the cheap path again.
    entries = len(await bench.texts())
    assert (await bench.check.settle([sent])).leave == [sent]
    assert len(await bench.texts()) == entries


async def test_a_recipient_changed_in_the_policy_is_respected(bench: Bench) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.replace(
        compile_text(POLICY.replace("recipient: oven-maker", "recipient: energy"), RECIPIENTS)
    )
    settled = await bench.check.settle([row])
    assert settled.leave == [] and settled.withheld == [row]
    assert await bench.waiting() == []
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because no grant allows passing this on."
    )


async def test_a_row_queued_inside_the_hours_and_leaving_after_them_is_withheld(
    bench: Bench,
) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.now[0] = datetime(2026, 12, 3, 21, 3, tzinfo=UTC)  # 22:03 in Berlin
    settled = await bench.check.settle([row])
    assert settled.leave == [] and settled.withheld == [row]
    assert await bench.waiting() == []
    assert (await bench.texts())[-1] == (
        "Withheld at send time, because the allowed hours of grant 'maintenance' (06:00-22:00) "
        "had ended before it could be sent to Ofenbau Müller. The message was decided inside "
        "those hours; it went to no one."
    )


async def test_a_row_waiting_while_the_clock_is_behind_leaves_only_if_both_times_allow(
    bench: Bench,
) -> None:
    """The log's time stands at 13:00 (Berlin) while the system clock says 01:00: the grant's
    hours (06:00-22:00) hold at one and not the other, so the row is withheld and says why; at
    12:00 by the clock both allow it and it leaves as decided."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    before = await bench.texts()
    bench.clock.behind = NOON - timedelta(hours=1)
    assert bench.check.settled_now([row]) is not None
    settled = await bench.check.settle([row])
    assert settled.leave == [row] and await bench.texts() == before
    bench.clock.behind = NOON - timedelta(hours=12)
    assert bench.check.settled_now([row]) is None  # for ``settle``, which records why
    settled = await bench.check.settle([row])
    assert settled.leave == [] and settled.withheld == [row]
    assert await bench.waiting() == []
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because the gateway's system clock is behind the newest entry "
        "of its log, so the time is uncertain, and the times it may be give different answers to "
        "whether the moment lies within the allowed hours of grant “maintenance”"
    )
    assert (
        "ob der Zeitpunkt in den erlaubten Zeiten der Freigabe „maintenance“"
        in (await bench.texts("de"))[-1]
    )


async def test_a_row_withheld_at_send_leaves_the_queue_count_even_if_its_caller_is_cancelled(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forwarder stopped (a reload) while the check's COMMIT runs on the helper thread: the
    store finishes the COMMIT and then raises the cancellation. The row is gone from the table,
    so it must be gone from the queue's count too, or later releases read "queue full"."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    queues = bench.pipeline.queues
    assert queues.rows["oven-maker"] == 1
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    transaction = bench.store.transaction

    async def cancelled_after_commit(job: Any, **kwargs: Any) -> Any:
        await transaction(job, **kwargs)
        raise asyncio.CancelledError  # as the store raises it once the COMMIT has ended

    monkeypatch.setattr(bench.store, "transaction", cancelled_after_commit)
    with pytest.raises(asyncio.CancelledError):
        await bench.check.settle([row])
    assert await bench.waiting() == []
    assert queues.rows["oven-maker"] == 0


async def test_a_row_an_erasure_took_during_the_check_leaves_the_queue_count_once(
    bench: Bench,
) -> None:
    """The check holds the row in memory; an erasure deletes it from the table and takes it off
    the counts meanwhile. Withheld or decided again, it is not counted off a second time (the
    recipient's total fell below the other customers' rows waiting)."""
    other = await bench.queued({"temperature": 170.0, "door_open": False})
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    queues = bench.pipeline.queues
    assert queues.rows["oven-maker"] == 2
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    await bench.store.transaction(functools.partial(outbox.delete, ids=[row.id]))
    queues.done("oven-maker", row.customer, 1, len(row.payload))  # as the erasure counts it
    settled = await bench.check.settle([row])
    assert settled.withheld == [row]
    assert queues.rows["oven-maker"] == 1  # ``other`` still waits
    assert [r.id for r in await bench.waiting()] == [other.id]


async def test_a_withdrawal_while_queued_withholds_with_its_own_words(bench: Bench) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    settled = await bench.check.settle([row])
    assert settled.withheld == [row]
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because the grant was withdrawn."
    )


async def test_a_row_whose_topic_another_instance_now_takes_is_withheld_in_words(
    bench: Bench,
) -> None:
    """In a cluster: a row queued before this instance knew of another instance's customer whose
    pattern takes the row's device topic (gateway/messages/contested.py) does not leave; the
    check says why, in the committing turn too. Rows of other topics leave as decided."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    other = dataclasses.replace(row, id=row.id + 1000, source_topic="bakery/oven-2/telemetry")
    bench.engine.disowned = lambda topic: topic == TOPIC
    assert bench.check.settled_now([row]) is None  # for ``settle``, which records why
    settled = await bench.check.settle([row, other])
    assert settled.withheld == [row] and settled.leave == [other]
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because its topic matches a device of another customer, "
        "whose policy another Einblick instance runs."
    )
    assert await bench.waiting() == []


async def test_the_pipeline_stamps_a_release_held_to_the_end_of_its_hour(bench: Bench) -> None:
    hourly = POLICY.replace(
        "      door_open: keep\n", "      door_open: keep\n      ts: {truncate: hour}\n"
    ).replace("    hours:", "    release: end_of_unit\n    hours:")
    bench.engine.replace(compile_text(hourly, RECIPIENTS))
    row = await bench.queued({"temperature": 180.2, "door_open": True, "ts": 1796300225})
    # NOON is 13:00 in Berlin: the hour ends at 14:00 Berlin, 13:00 UTC.
    assert row.release_at == us_from_at(datetime(2026, 12, 3, 13, 0, tzinfo=UTC))
    # Decided again at send time, the row keeps its hold.
    bench.engine.replace(
        compile_text(hourly.replace("door_open: keep", "door_open: keep # v2"), RECIPIENTS)
    )
    (again,) = (await bench.check.settle([row])).leave
    assert again.release_at == row.release_at and again.version != row.version


async def test_an_objection_while_queued_withholds_in_its_own_words(bench: Bench) -> None:
    statistics = POLICY.replace("legal_basis: contract", "legal_basis: legitimate_interests")
    bench.engine.replace(compile_text(statistics, RECIPIENTS))
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON, Reason("objected"))
    # The policy changes too, so the row is decided again (not only checked).
    bench.engine.replace(
        compile_text(statistics.replace("door_open: keep", "door_open: keep # 2"), RECIPIENTS)
    )
    assert (await bench.check.settle([row])).withheld == [row]
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because the customer objected to this use (GDPR Art. 21)."
    )


async def test_a_message_too_large_to_keep_is_withheld_when_its_grant_changes(
    bench: Bench,
) -> None:
    # 20 KiB of padding to release two small fields: more than the outbox keeps per row (a
    # hostile device must not park its large messages in the outbox at the release's price).
    big = {"temperature": 180.2, "door_open": True, "padding": "x" * 20_000}
    row = await bench.queued(big)
    assert row.source is None and row.version is not None
    small = await bench.queued({"temperature": 180.2, "door_open": True})
    assert small.source is not None  # the usual message keeps its source
    bench.engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    settled = await bench.check.settle([row])
    assert settled.leave == []  # it cannot be decided again: default deny
    assert [r.id for r in await bench.waiting()] == [small.id]
    assert "Withheld at send time" in (await bench.texts())[-1]


def test_the_outbox_keeps_a_source_only_at_about_the_releases_cost() -> None:
    assert outbox.keeps_source(b"x" * outbox.SOURCE_FLOOR, b"1")
    assert not outbox.keeps_source(b"x" * (outbox.SOURCE_FLOOR + 1), b"1")
    released = b"y" * 10_000
    assert outbox.keeps_source(b"x" * 40_000, released)
    assert not outbox.keeps_source(b"x" * 40_001, released)


async def test_a_row_whose_policy_stopped_running_is_withheld_in_words_that_hold(
    bench: Bench,
) -> None:
    """Its policy file removed (gateway/messages/admission.py): no version to name, no stream
    known; before, the entry read 'stream “”' and 'of policy version .'."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.remove("baeckerei-schmidt")
    assert (await bench.check.settle([row])).withheld == [row]
    reason = (
        "no policy of this customer is in force (its file did not load, or was removed); until "
        "one is, nothing leaves"
    )
    assert (await bench.texts())[-1] == (
        f"Withheld at send time, because {reason}. oven-maker received nothing from oven-1, "
        f"because {reason}."
    )


async def test_a_row_an_earlier_attempt_may_have_delivered_is_not_said_to_have_gone_nowhere(
    bench: Bench,
) -> None:
    """Published before and never acknowledged (its connection ended, or a restart came first):
    "received nothing" or "went to no one" could be false of it."""
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
    assert (await bench.check.settle([row], None, lambda r: r.id == row.id)).withheld == [row]
    assert (await bench.texts())[-1] == (
        "Withheld at send time, because the grant was withdrawn. An earlier attempt to send it to "
        "Ofenbau Müller may have gone unconfirmed (its connection ended, or the gateway "
        "restarted, before the acknowledgement came), so it may have arrived there once. It is "
        "not sent again."
    )


async def test_a_row_maybe_delivered_whose_hours_ended_says_both(bench: Bench) -> None:
    other = await bench.queued({"temperature": 181.0, "door_open": False})
    bench.now[0] = datetime(2026, 12, 3, 21, 3, tzinfo=UTC)  # 22:03 in Berlin
    assert (await bench.check.settle([other], None, lambda r: r.id == other.id)).withheld == [other]
    assert (await bench.texts())[-1].startswith(
        "Withheld at send time, because the allowed hours of grant 'maintenance' (06:00-22:00) "
        "had ended. An earlier attempt to send it to Ofenbau Müller may have gone unconfirmed"
    )


async def test_a_row_maybe_delivered_and_decided_again_says_both_versions_may_be_there(
    bench: Bench,
) -> None:
    row = await bench.queued({"temperature": 180.2, "door_open": True})
    bench.engine.replace(compile_text(POLICY.replace("      door_open: keep\n", ""), RECIPIENTS))
    (sent,) = (await bench.check.settle([row], None, lambda r: r.id == row.id)).leave
    assert sent.payload != row.payload
    text = (await bench.texts())[-1]
    assert text.startswith("Re-decided at send time under version ")
    assert text.endswith(
        " An earlier attempt to send it as decided before may have gone unconfirmed, so that "
        "version may have reached Ofenbau Müller once as well."
    )
    assert (await bench.texts("de"))[-1].endswith(
        " Ein früherer Versuch, sie wie zuvor entschieden zu senden, blieb womöglich "
        "unbestätigt; die frühere Fassung kann Ofenbau Müller also ebenfalls einmal erreicht "
        "haben."
    )
