"""The submitter's view of the box's log, on a real database through the gateway's own Store:
the newest checkpoint of each log, and per witness (its vkey) and tree what it cosigned, the
size it said it holds, its last refusal, and since when it has been behind."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.log.checkpoints import SignedCheckpoint, cosignature_lines
from gateway.log.keys import Signer
from gateway.log.merkle import verify_consistency
from gateway.messages.store import Store
from gateway.witness.ledger import Ledger
from tests.log.conftest import T0, Log, make_draft

BAKERY, DAIRY = "baeckerei-schmidt", "molkerei-huber"
W1, W2 = "witness.example/w1+0badc0de+AQ", "witness.example/w2+0badcafe+AQ"
LINE = "— witness.example/w1 c2lnbmF0dXJl\n"


@dataclass
class Box:
    log: Log
    ledger: Ledger
    store: Store
    count: int = 0

    def write(self, customer: str, count: int) -> None:
        """``count`` entries for ``customer``, then a signed checkpoint of every tree."""
        start, self.count = self.count, self.count + count
        self.log.write([make_draft(i, customer=customer) for i in range(start, self.count)])

    async def newest(self, customer: str) -> SignedCheckpoint:
        (checkpoint,) = [c for c in await self.ledger.checkpoints() if c.chain == customer]
        return checkpoint


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    log = Log(tmp_path / "einblick.db", Signer.generate(tmp_path / "log.key"))
    store = Store(tmp_path / "einblick.db")
    await store.open()
    # As app.py wires it: reads and writes on the store's one writer connection.
    ledger = Ledger(
        lambda job: store.read(job, offload=True),
        lambda job: store.transaction(job, durable=False),
    )
    yield Box(log, ledger, store)
    await store.close()
    log.close()


async def test_the_newest_checkpoint_of_each_log(box: Box) -> None:
    box.write(BAKERY, 3)
    box.write(DAIRY, 2)
    box.write(BAKERY, 4)
    bakery, dairy = await box.newest(BAKERY), await box.newest(DAIRY)
    assert (bakery.size, dairy.size) == (7, 2)
    assert bakery.note.startswith(bakery.text) and bakery.text.split("\n")[1] == "7"
    assert bakery.chain_id != dairy.chain_id


async def test_a_cosignature_is_recorded_per_witness_and_tree(box: Box) -> None:
    box.write(BAKERY, 3)
    box.write(DAIRY, 2)
    bakery = await box.newest(BAKERY)
    assert await box.ledger.progress(W1) == {}
    await box.ledger.cosigned(
        witness=W1, name="witness.example/w1", checkpoint=bakery, line=LINE, timestamp=7, at_us=9
    )
    held = (await box.ledger.progress(W1))[bakery.chain_id]
    assert (held.size, held.checkpoint_id, held.at_us) == (3, bakery.id, 9)
    assert list(await box.ledger.progress(W1)) == [bakery.chain_id]  # the dairy's tree: nothing
    assert await box.ledger.progress(W2) == {}  # another witness: nothing
    assert await box.store.read(lambda conn: cosignature_lines(conn, bakery.id)) == [LINE]


async def test_a_size_learned_from_a_409_names_no_checkpoint(box: Box) -> None:
    box.write(BAKERY, 5)
    bakery = await box.newest(BAKERY)
    await box.ledger.learned(W1, bakery.chain_id, 3, 11)
    held = (await box.ledger.progress(W1))[bakery.chain_id]
    assert (held.size, held.checkpoint_id, held.at_us) == (3, None, 11)


async def test_a_refusal_stands_until_a_cosignature_clears_it(box: Box) -> None:
    box.write(BAKERY, 5)
    bakery = await box.newest(BAKERY)
    await box.ledger.refused(W1, bakery.chain_id, 422, "not an extension", 12)
    held = (await box.ledger.progress(W1))[bakery.chain_id]
    assert (held.refused_status, held.refused_reason, held.refused_at_us) == (
        422, "not an extension", 12,
    )  # fmt: skip
    assert held.size is None  # a refusal teaches nothing about what the witness holds
    box.write(BAKERY, 1)
    later = await box.newest(BAKERY)
    await box.ledger.cosigned(
        witness=W1, name="witness.example/w1", checkpoint=later, line=LINE, timestamp=7, at_us=13
    )
    held = (await box.ledger.progress(W1))[bakery.chain_id]
    assert (held.size, held.refused_status, held.refused_reason) == (6, None, None)


async def test_behind_since_the_first_checkpoint_above_the_cosigned_size(box: Box) -> None:
    box.write(BAKERY, 3)
    first = await box.newest(BAKERY)
    box.write(BAKERY, 2)
    box.write(BAKERY, 2)
    assert await box.ledger.first_uncovered_at(first.chain_id, 7) is None
    at = await box.ledger.first_uncovered_at(first.chain_id, 3)
    # The second checkpoint (size 5) was the first the witness had not covered.
    assert at == _us(T0 + timedelta(milliseconds=10 * 4 + 1))
    assert await box.ledger.first_uncovered_at(first.chain_id, 0) == first.at_us


async def test_the_proof_between_two_checkpoints_verifies(box: Box) -> None:
    box.write(BAKERY, 3)
    small = await box.newest(BAKERY)
    box.write(BAKERY, 8)
    large = await box.newest(BAKERY)
    proof = await box.ledger.proof(small.chain_id, 3, 11)
    verify_consistency(3, 11, _root(small), _root(large), proof)


def _root(checkpoint: SignedCheckpoint) -> bytes:
    return base64.b64decode(checkpoint.text.split("\n")[2])


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
