"""Recipients' acknowledgements of erasure notices: heard on a recipient's link, stored in order,
and taken off what ``einblick status`` lists as unacknowledged."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from gateway.config import RecipientConfig
from gateway.messages.endpoint import Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.messages.store import Store
from gateway.rights.erasure import ACK_TOPIC
from gateway.rights.erasure_acks import ErasureAcks
from gateway.rights.erasure_book import ErasureBook, list_erasures

NOTICE = "0123456789abcdef0123456789abcdef"
RECIPIENT = RecipientConfig(
    name="oven-maker", display_name="Ofenbau", url="mqtt://127.0.0.1:1", topic_prefix="edge/"
)


def _inbound(topic: str, payload: bytes = b"{}") -> Inbound:
    # Never acknowledged here: an acknowledgement topic is read, not decided.
    return Inbound(topic, payload, 1, False, 1, cast(MqttConnection, None))


def _seed(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO erasures (id, customer, device, at, requested_by, entry_seq, content,"
        " queued, keys, retained) VALUES (1, 'berg-partner', NULL, 1, 'M. Berg', 7, 0, 0, 0, 0)"
    )
    conn.execute(
        "INSERT INTO erasure_notices (notice, erasure_id, recipient, outbox_id, acked_at)"
        " VALUES (?, 1, 'oven-maker', 999, NULL)",
        (NOTICE,),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "einblick.db")
    await store.open()
    await store.transaction(_seed)
    yield store
    await store.close()


async def _until_acknowledged(book: ErasureBook) -> None:
    """Wait for the status condition the task changes (it signals nothing else)."""
    async with asyncio.timeout(10):
        while NOTICE in book.unacknowledged:
            await asyncio.sleep(0.01)


async def test_an_acknowledgement_is_stored_and_leaves_the_status(store: Store) -> None:
    book = ErasureBook()
    await store.read(book.load)
    assert NOTICE in book.unacknowledged
    acks = ErasureAcks(store, book)
    heard = acks.listener(RECIPIENT)
    heard(_inbound("edge/" + ACK_TOPIC.format(notice=NOTICE)))
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(acks.run(), name="erasure-acks")
        await _until_acknowledged(book)
        task.cancel()
    listed = await store.read(list_erasures)
    assert listed[0]["notices"][0]["acknowledged_at"] is not None


async def test_other_messages_and_cleared_acks_are_ignored(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    book = ErasureBook()
    await store.read(book.load)
    acks = ErasureAcks(store, book)
    acks.heard(RECIPIENT, _inbound("edge/ovens/baeckerei-schmidt/oven-1"))  # not an ack topic
    acks.heard(RECIPIENT, _inbound("edge/" + ACK_TOPIC.format(notice=NOTICE), b""))  # cleared
    # An ack from another recipient's prefix is not this recipient's.
    acks.heard(RECIPIENT, _inbound(ACK_TOPIC.format(notice=NOTICE)))
    # An unknown notice: stored nowhere, said in the log. It also fences the queue: once it is
    # reported, everything heard before it was handled.
    acks.heard(RECIPIENT, _inbound("edge/" + ACK_TOPIC.format(notice="f" * 32)))
    with caplog.at_level(logging.WARNING):
        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(acks.run(), name="erasure-acks")
            async with asyncio.timeout(10):
                while "unknown erasure notice" not in caplog.text:
                    await asyncio.sleep(0.01)
            task.cancel()
    assert NOTICE in book.unacknowledged
    listed = await store.read(list_erasures)
    assert listed[0]["notices"][0]["acknowledged_at"] is None
