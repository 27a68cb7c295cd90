"""The running forwarders: one named task per recipient, only a changed recipient restarted, and
a removed recipient's queued rows recorded withheld rather than dropped."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from gateway.config import RecipientConfig
from gateway.devices.ports import free_port
from gateway.errors import StoreError
from gateway.messages.endpoint import endpoint_for
from gateway.messages.forwarder import Forwarder
from gateway.messages.outbox import Outbox, OutboxRow, insert
from gateway.messages.quota import RecipientQueues
from gateway.messages.sendtime import Settled
from gateway.messages.store import Store
from gateway.messages.upstreams import MakeForwarder, Upstreams
from policies.decision import Reason

# Nothing listens there: the forwarders keep trying to connect, which is all these tests need.
PORT = free_port()


def recipient(name: str, prefix: str = "") -> RecipientConfig:
    return RecipientConfig(
        name=name, display_name=name.title(), url=f"mqtt://127.0.0.1:{PORT}", topic_prefix=prefix
    )


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    store = Store(tmp_path / "einblick.db")
    await store.open()
    queues = RecipientQueues(
        {"cloud-a": "withhold", "cloud-b": "withhold"},
        max_rows_total=1000,
        max_rows=None,
        max_bytes=None,
        disk_share=0.5,
        disk=tmp_path,
    )
    yield Outbox(store, queues, max_rows=1000)
    await store.close()


def maker(outbox: Outbox) -> MakeForwarder:
    """Builds forwarders on ``outbox`` as the gateway does (no send-time check needed here)."""

    async def at_send(
        rows: Sequence[OutboxRow], reachable_us: int | None, tried: Callable[[OutboxRow], bool]
    ) -> Settled:
        raise AssertionError("nothing is sent in these tests")

    def make(config: RecipientConfig, password: str | None) -> Forwarder:
        endpoint = endpoint_for(config, "unit", password)
        return Forwarder(config, endpoint, outbox, at_send=at_send, checked=lambda: 0)

    return make


async def test_each_recipient_runs_as_its_own_named_task(outbox: Outbox) -> None:
    make = maker(outbox)
    upstreams = Upstreams(outbox, [recipient("cloud-a", "edge/")])
    upstreams.add(make, recipient("cloud-a", "edge/"), "pw-a")
    assert upstreams.tasks == {}  # built, not running: the task group starts them
    assert upstreams.topic_prefix == {"cloud-a": "edge/"}
    async with asyncio.TaskGroup() as group:
        upstreams.start(group)
        assert upstreams.tasks["cloud-a"].get_name() == "forwarder-cloud-a"
        upstreams.add(make, recipient("cloud-b"), None)  # added while running: runs at once
        assert upstreams.tasks["cloud-b"].get_name() == "forwarder-cloud-b"
        task = upstreams.tasks["cloud-a"]
        await upstreams.stop("cloud-a")
        assert task.cancelled()
        assert "cloud-a" not in upstreams.forwarders and "cloud-a" not in upstreams.passwords
        await upstreams.stop("cloud-b")


def test_a_recipient_runs_on_only_with_the_same_settings_and_password(outbox: Outbox) -> None:
    make = maker(outbox)
    upstreams = Upstreams(outbox, [])
    upstreams.add(make, recipient("cloud-a"), "old")
    same = recipient("cloud-a")
    assert upstreams.unchanged("cloud-a", same, same, {"cloud-a": "old"})
    assert upstreams.unchanged("cloud-a", same, same, {})  # no password file read: as it was
    assert not upstreams.unchanged("cloud-a", same, same, {"cloud-a": "new"})
    assert not upstreams.unchanged("cloud-a", same, recipient("cloud-a", "x/"), {})
    assert not upstreams.unchanged("cloud-a", same, None, {})  # removed


async def test_a_removed_recipients_queue_is_recorded_withheld_in_batches(outbox: Outbox) -> None:
    rows = [
        (i, "cloud-a", "werk-nord", "press-1", "monitoring", "t", b"x" * i, 0)
        for i in range(1, 1202)
    ] + [(9999, "cloud-b", "werk-nord", "press-1", "monitoring", "t", b"y", 0)]

    def seed(conn: sqlite3.Connection) -> None:
        insert(conn, rows)

    await outbox.store.transaction(seed)
    await outbox.load()
    upstreams = Upstreams(outbox, [recipient("cloud-a", "edge/"), recipient("cloud-b")])
    recorded: list[list[tuple[int, str]]] = []

    failures = [StoreError("einblick.db: write failed: database or disk is full")]

    async def withhold(refused: Sequence[tuple[OutboxRow, Reason]]) -> None:
        # What the pipeline does: record each row withheld and delete it, in one transaction.
        if failures:
            raise failures.pop()
        recorded.append([(row.id, reason.code) for row, reason in refused])
        await outbox.delete([row.id for row, _ in refused])

    outbox.last_id = 600  # its forwarder is made when rows up to 600 were there
    upstreams.add(maker(outbox), recipient("cloud-a", "edge/"), None)
    await upstreams.stop("cloud-a")  # as a reload that removes it does first
    with pytest.raises(StoreError):
        await upstreams.remove("cloud-a", withhold)  # the disk refused: the reload fails
    assert await upstreams.remove("cloud-a", withhold) == 1201  # asked again
    assert [len(batch) for batch in recorded] == [1000, 201]
    codes = {row_id: code for batch in recorded for row_id, code in batch}
    # Rows there when its forwarder was made may have been published by one before it (the
    # entry must not say the recipient received nothing); it published none of the others.
    maybe = {i for i, code in codes.items() if code == "recipient_removed_maybe_sent"}
    assert maybe == set(range(1, 601))
    assert {code for i, code in codes.items() if i > 600} == {"recipient_removed"}
    assert "cloud-a" not in upstreams.topic_prefix and "cloud-b" in upstreams.topic_prefix
    assert "cloud-a" not in outbox.queues.rows
    assert [r.recipient for r in await outbox.pending("cloud-b", after=0, limit=10)] == ["cloud-b"]
