"""Signing the logs: only when entries were written since the last signature (or forced), and a
backup's snapshot copies the database as it stood right after its signature."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.log.keys import Signer
from gateway.log.reader import Reader
from gateway.log.writer import LogWriter
from gateway.messages.store import Store
from gateway.operations.checkpoints import Checkpoints
from tests.log.conftest import T0, make_draft


@dataclass
class Signing:
    store: Store
    writer: LogWriter
    checkpoints: Checkpoints
    written: list[int]  # entries written so far
    path: Path
    pokes: list[None]  # one per signature: what the witnesses' submitter is told

    async def write(self, count: int) -> None:
        start = self.written[0]
        drafts = [make_draft(start + i) for i in range(count)]
        await self.store.transaction(
            lambda conn: self.writer.append(drafts),
            on_rollback=self.writer.rolled_back,
            on_commit=self.writer.committed,
        )
        self.written[0] += count

    def signed_sizes(self) -> list[int]:
        reader = Reader.open(self.path)
        try:
            return sorted(cp.size for _, cp in reader.checkpoint_rows())
        finally:
            reader.close()


@pytest.fixture
async def signing(tmp_path: Path) -> AsyncIterator[Signing]:
    path = tmp_path / "einblick.db"
    store = Store(path)
    await store.open()
    writer = await store.read(lambda conn: LogWriter(conn, Signer.generate(), "unit"))
    written = [0]
    pokes: list[None] = []
    checkpoints = Checkpoints(
        store,
        lambda: writer,
        clock=lambda: T0,
        interval_s=lambda: 0.01,
        signed=lambda: pokes.append(None),
    )
    yield Signing(store, writer, checkpoints, written, path, pokes)
    await store.close()


async def test_nothing_new_signs_nothing_unless_forced(signing: Signing) -> None:
    assert signing.checkpoints.age_s() is None
    assert signing.writer.unsigned() == 0
    await signing.write(3)
    assert signing.writer.unsigned() == 3  # the writer knows what its signatures do not cover
    await signing.checkpoints.sign()
    assert signing.writer.unsigned() == 0
    assert signing.signed_sizes() == [3]
    assert len(signing.pokes) == 1
    assert signing.checkpoints.last_signed > 0
    signed_at = signing.checkpoints.last_signed
    await signing.checkpoints.sign()  # no new entries: no transaction at all
    assert signing.checkpoints.last_signed == signed_at
    assert signing.signed_sizes() == [3]
    await signing.checkpoints.sign(force=True)  # forced: a transaction (nothing to sign in it)
    assert signing.checkpoints.last_signed > signed_at
    await signing.write(2)
    await signing.checkpoints.sign()
    assert signing.signed_sizes() == [3, 5]


async def test_a_snapshot_holds_every_entry_signed(signing: Signing, tmp_path: Path) -> None:
    await signing.write(4)
    target = tmp_path / "backup-snapshot-1.db"
    await signing.checkpoints.sign(snapshot=target)  # a snapshot signs even with nothing new
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        signed = conn.execute("SELECT max(size) FROM checkpoints").fetchone()[0]
    finally:
        conn.close()
    assert entries == signed == 4


async def test_the_loop_signs_new_entries_at_its_interval(signing: Signing) -> None:
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(signing.checkpoints.run(), name="checkpoints")
        await signing.write(2)
        async with asyncio.timeout(10):  # the status condition the loop changes
            while signing.checkpoints.last_signed == 0:
                await asyncio.sleep(0.01)
        task.cancel()
    assert signing.signed_sizes() == [2]
    age = signing.checkpoints.age_s()
    assert age is not None and 0 <= age < 10
