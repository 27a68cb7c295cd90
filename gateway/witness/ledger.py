"""The submitter's view of the box's log: checkpoints and proofs to send, cosignatures to keep.

Given two runners by ``app.py`` — ``read`` and ``write`` run a function of the database
connection on the store's one writer connection (``Store.read`` / ``Store.transaction``) — so
the witness room needs nothing of the message path. The SQL is ``gateway.log.checkpoints``'
(the notes) and ``gateway.log.cosignatures``' (the witnesses' tables).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from gateway.log import checkpoints as notes
from gateway.log import cosignatures as db
from gateway.log.checkpoints import SignedCheckpoint
from gateway.log.cosignatures import Progress

__all__ = ["Ledger", "Runner"]

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, job: Callable[[sqlite3.Connection], T], /) -> Awaitable[T]: ...


class Ledger:
    def __init__(self, read: Runner, write: Runner) -> None:
        self._read = read
        self._write = write

    async def checkpoints(self) -> list[SignedCheckpoint]:
        return await self._read(notes.latest_checkpoints)

    async def progress(self, witness: str) -> dict[int, Progress]:
        return await self._read(lambda conn: db.progress(conn, witness))

    async def first_uncovered_at(self, chain_id: int, size: int) -> int | None:
        return await self._read(lambda conn: notes.first_uncovered_at(conn, chain_id, size))

    async def proof(self, chain_id: int, old: int, new: int) -> list[bytes]:
        return await self._read(lambda conn: db.consistency(conn, chain_id, old, new))

    async def cosigned(
        self,
        *,
        witness: str,
        name: str,
        checkpoint: SignedCheckpoint,
        line: str,
        timestamp: int,
        at_us: int,
    ) -> None:
        await self._write(
            lambda conn: db.record_cosignature(
                conn,
                witness=witness,
                name=name,
                checkpoint=checkpoint,
                line=line,
                timestamp=timestamp,
                at_us=at_us,
            )
        )

    async def learned(self, witness: str, chain_id: int, size: int, at_us: int) -> None:
        await self._write(lambda conn: db.record_size(conn, witness, chain_id, size, at_us))

    async def refused(
        self, witness: str, chain_id: int, status: int, reason: str, at_us: int
    ) -> None:
        await self._write(
            lambda conn: db.record_refusal(
                conn, witness=witness, chain_id=chain_id, status=status, reason=reason, at_us=at_us
            )
        )
