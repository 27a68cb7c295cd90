"""The witness's memory: the latest cosigned checkpoint per origin, and refused forks as evidence.

One SQLite file in the witness's directory. The spec's race (two requests both checked against
size N, the larger one stored first, then rolled back by the smaller) cannot happen: reading
the held size, judging, and storing the new checkpoint run in one ``BEGIN IMMEDIATE``
transaction, which also holds off a second witness process started on the same directory.
The answer is sent only after the commit, so a cosignature never vouches for a state that a
crash could take back.

A refused checkpoint that the log's own key signed (a fork, a rewritten history) is kept
verbatim in ``refusals``: it is the log operator's signature on two incompatible histories,
which anyone can check later. At most :data:`MAX_EVIDENCE` rows per origin are kept (the
oldest go first after the first few), so a misbehaving log cannot fill the witness's disk.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.log.note import Verifier
from gateway.witness.protocol import AddCheckpoint, Latest, Verdict, judge

__all__ = ["MAX_EVIDENCE", "Answer", "Refusal", "WitnessState"]

MAX_EVIDENCE = 1000
_KEEP_FIRST = 10  # the first refusals of a log are the ones that show when it began

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,          -- the checkpoint as submitted, with our cosignature appended
    cosigned_at INTEGER NOT NULL -- POSIX seconds, the cosignature's timestamp
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,         -- POSIX seconds
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    held_size INTEGER NOT NULL,
    request BLOB NOT NULL        -- the request body, verbatim: the log's signed checkpoint
);
CREATE INDEX IF NOT EXISTS refusals_origin ON refusals (origin, id);
"""


@dataclass(frozen=True, slots=True)
class Answer:
    """A verdict and, for a 200, the cosignature lines the witness returns."""

    verdict: Verdict
    lines: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    at: int
    origin: str
    status: int
    reason: str
    held_size: int
    request: bytes


class WitnessState:
    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), never implicit.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")  # a cosigned size survives power loss
        self._conn.execute("PRAGMA busy_timeout = 5000")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    def latest(self, origin: str) -> Latest | None:
        row = self._conn.execute(
            "SELECT size, root FROM latest WHERE origin = ?", (origin,)
        ).fetchone()
        return Latest(int(row[0]), bytes(row[1])) if row else None

    def latest_note(self, origin: str) -> str | None:
        row = self._conn.execute("SELECT note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return str(row[0]) if row else None

    def origins(self) -> list[str]:
        return [str(r[0]) for r in self._conn.execute("SELECT origin FROM latest ORDER BY origin")]

    def refusals(self, origin: str | None = None) -> list[Refusal]:
        rows = self._conn.execute(
            "SELECT at, origin, status, reason, held_size, request FROM refusals"
            " WHERE ?1 IS NULL OR origin = ?1 ORDER BY id",
            (origin,),
        )
        return [
            Refusal(int(a), str(o), int(s), str(r), int(h), bytes(b)) for a, o, s, r, h, b in rows
        ]

    def add_checkpoint(
        self,
        request: AddCheckpoint,
        body: bytes,
        trusted: Mapping[str, Sequence[Verifier]],
        cosign: Callable[[str, int], str],
        clock: Callable[[], float] = time.time,
    ) -> Answer:
        """Judge ``request`` against the held state and, if it passes, store it and cosign —
        all under one write lock. ``cosign(text, timestamp)`` returns the signature lines."""
        origin = request.note.split("\n", 1)[0]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            latest = self.latest(origin)
            verdict = judge(request, trusted, latest)
            now = int(clock())
            if verdict.ok:
                assert verdict.checkpoint is not None
                # A cosignature's time never goes backwards for one log, even if the clock does:
                # a later cosignature with an earlier time would read as the older statement.
                held = conn.execute(
                    "SELECT cosigned_at FROM latest WHERE origin = ?", (origin,)
                ).fetchone()
                stamp = max(now, int(held[0]) if held else 1, 1)
                lines = cosign(request.text, stamp)
                conn.execute(
                    "INSERT OR REPLACE INTO latest (origin, size, root, note, cosigned_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        origin,
                        verdict.checkpoint.size,
                        verdict.checkpoint.root,
                        request.note + lines,
                        stamp,
                    ),
                )
                answer = Answer(verdict, lines)
            else:
                if verdict.evidence:
                    self._keep(origin, verdict, latest, body, now)
                answer = Answer(verdict)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return answer

    def _keep(
        self, origin: str, verdict: Verdict, latest: Latest | None, body: bytes, now: int
    ) -> None:
        self._conn.execute(
            "INSERT INTO refusals (at, origin, status, reason, held_size, request)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (now, origin, verdict.status, verdict.reason, latest.size if latest else 0, body),
        )
        (count,) = self._conn.execute(
            "SELECT count(*) FROM refusals WHERE origin = ?", (origin,)
        ).fetchone()
        if count > MAX_EVIDENCE:
            # Drop the oldest after the first few: the start and the recent past stay.
            self._conn.execute(
                "DELETE FROM refusals WHERE id = (SELECT id FROM refusals WHERE origin = ?"
                " ORDER BY id LIMIT 1 OFFSET ?)",
                (origin, _KEEP_FIRST),
            )
