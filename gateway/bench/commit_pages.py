"""What one commit of the pipeline writes: WAL frames per table and index, and its CPU.

``python -m gateway.bench.commit_pages [--batch 1] [--commits 2000] [--dir DIR]``

Each commit is the pipeline's transaction on a real file with the gateway's connection settings
(``gateway.messages.store.connect``: WAL, synchronous=FULL, secure_delete): BEGIN IMMEDIATE, the
log writer appends ``batch`` entries (one customer, ten devices taking turns, one recipient,
each shared with a ~80-byte payload: the pipeline benchmark's traffic), one outbox row per
entry, COMMIT. A checkpoint note is signed about once a second of traffic at 1,000 msg/s, and
every 17 commits (20 ms at 1,000 msg/s in batches of 1.2) the rows queued before are deleted in
one commit without fsync, as the forwarder does once their recipient acknowledged them.

Two runs, each in a database of its own after 2,000 entries of warm-up:

- frames: the WAL is not folded into the database (``wal_autocheckpoint=0``), and after each
  commit the frames it appended are read back; a frame's header names the page it holds, and
  SQLite's ``dbstat`` table names the table or index that page belongs to. Every dirtied page
  is one frame: 4 KiB written and checksummed, then fsynced.
- CPU: user and system time of this process around each commit (``getrusage``), with the WAL
  folded in as the gateway does (a WAL that only grows costs more per fsync than one reused).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import resource
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.bench.log import realistic_drafts
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.schema import ensure_schema
from gateway.log.writer import LogWriter
from gateway.messages import outbox
from gateway.messages.store import connect

__all__ = ["CommitPages", "main", "measure_pages", "render_pages", "wal_pages"]

WARM_UP = 2000  # entries before measuring: the b-trees have interior pages, as on a box
DELETE_EVERY = 17
CHECKPOINT_EVERY = 830  # commits: ~1 s at 1,000 msg/s in batches of 1.2
_DEVICES = 10
_T0 = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CommitPages:
    batch: int
    commits: int
    # WAL frames per commit, by the table or index the page belongs to
    frames: dict[str, float]
    delete_frames: dict[str, float]  # per commit of the forwarder's delete
    user_us: float  # CPU per pipeline commit
    sys_us: float

    @property
    def total(self) -> float:
        return sum(self.frames.values())


def wal_pages(wal: Path, page_size: int, skip: int) -> list[int]:
    """Page numbers of the WAL's frames after the first ``skip`` (32-byte file header, then per
    frame a 24-byte header starting with the page number, then the page)."""
    frame = 24 + page_size
    with wal.open("rb") as file:
        file.seek(32 + skip * frame)
        data = file.read()
    return [
        int.from_bytes(data[at : at + 4], "big") for at in range(0, len(data) - frame + 1, frame)
    ]


class _Traffic:
    """The pipeline's commits and the forwarder's deletes on one database file."""

    def __init__(self, path: Path, batch: int) -> None:
        self.conn = connect(path)
        ensure_schema(self.conn)
        self.writer = LogWriter(self.conn, Signer.generate(), "bench")
        self.batch = batch
        self.commits = 0
        self.queued: list[int] = []
        self._base = realistic_drafts(1, customers=("bench",))[0]
        self._n = 0

    def drafts(self) -> list[EntryDraft]:
        drafts = []
        for _ in range(self.batch):
            n, device = self._n, f"bench-dev-{self._n % _DEVICES}"
            drafts.append(
                dataclasses.replace(
                    self._base,
                    at=_T0 + timedelta(milliseconds=n),
                    device=device,
                    recipient="upstream",
                    topic=f"bench/{device}/telemetry",
                    content=b'{"t":%d,"hum":%d,"door":"closed","seq":%d}' % (20 + n % 5, n % 9, n),
                    source_digest=hashlib.sha256(b"%d" % n).digest(),
                    text_de=f"{device}: geteilt mit upstream (Fernwartung, Vertrag).",
                    text_en=f"{device}: shared with upstream (remote maintenance, contract).",
                )
            )
            self._n += 1
        return drafts

    def commit(self, drafts: Sequence[EntryDraft]) -> None:
        conn, writer = self.conn, self.writer
        conn.execute("BEGIN IMMEDIATE")
        appended = writer.append(drafts)
        if self.commits % CHECKPOINT_EVERY == 0:
            writer.checkpoint(drafts[-1].at)
        rows = outbox.insert(
            conn,
            [
                (
                    a.seq,
                    "upstream",
                    "bench",
                    str(d.device),
                    "g",
                    f"up/{d.topic}",
                    d.content or b"",
                    1,
                )
                for a, d in zip(appended, drafts, strict=True)
            ],
        )
        conn.execute("COMMIT")
        writer.committed()
        self.queued += [r.id for r in rows]
        self.commits += 1

    def delete_due(self) -> bool:
        if self.commits % DELETE_EVERY:
            return False
        ids, self.queued = self.queued, []
        self.conn.execute("PRAGMA synchronous=NORMAL")  # the forwarder's durable=False
        self.conn.execute("BEGIN IMMEDIATE")
        outbox.delete(self.conn, ids)
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA synchronous=FULL")
        return True

    def warm_up(self, entries: int) -> None:
        while self._n < entries:
            self.commit(self.drafts())
            self.delete_due()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _per_commit(counts: Counter[str], commits: int) -> dict[str, float]:
    return {name: n / max(1, commits) for name, n in counts.most_common()}


def _frames(
    path: Path, batch: int, commits: int, warm_up: int
) -> tuple[dict[str, float], dict[str, float]]:
    traffic = _Traffic(path, batch)
    conn = traffic.conn
    try:
        traffic.warm_up(warm_up)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        wal = Path(f"{path}-wal")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        seen = 0
        counts: dict[str, Counter[str]] = {"commit": Counter(), "delete": Counter()}
        made = Counter[str]()

        def count(kind: str) -> None:
            nonlocal seen
            names = dict(conn.execute("SELECT pageno, name FROM dbstat"))
            pages = wal_pages(wal, page_size, seen)
            seen += len(pages)
            counts[kind].update(str(names.get(p, "(free page)")) for p in pages)
            made[kind] += 1

        for _ in range(commits):
            traffic.commit(traffic.drafts())
            count("commit")
            if traffic.delete_due():
                count("delete")
        return (
            _per_commit(counts["commit"], made["commit"]),
            _per_commit(counts["delete"], made["delete"]),
        )
    finally:
        conn.close()


def _cpu(path: Path, batch: int, commits: int, warm_up: int) -> tuple[float, float]:
    traffic = _Traffic(path, batch)
    try:
        traffic.warm_up(warm_up)
        user = system = 0.0
        for _ in range(commits):
            drafts = traffic.drafts()
            before = resource.getrusage(resource.RUSAGE_SELF)
            traffic.commit(drafts)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user += after.ru_utime - before.ru_utime
            system += after.ru_stime - before.ru_stime
            traffic.delete_due()
        return 1e6 * user / commits, 1e6 * system / commits
    finally:
        traffic.conn.close()


def measure_pages(root: Path, *, batch: int, commits: int, warm_up: int = WARM_UP) -> CommitPages:
    """Both runs, in databases of their own under ``root``, after ``warm_up`` entries."""
    frames, delete_frames = _frames(root / f"pages-{batch}.db", batch, commits, warm_up)
    user_us, sys_us = _cpu(root / f"cpu-{batch}.db", batch, commits, warm_up)
    return CommitPages(batch, commits, frames, delete_frames, user_us, sys_us)


def render_pages(result: CommitPages) -> Iterator[str]:
    yield (
        f"Commits of {result.batch} message(s) each ({result.commits} commits, WAL,"
        f" synchronous=FULL): {result.total:.2f} WAL frames per commit"
    )
    for name, n in result.frames.items():
        yield f"  {name:28s} {n:6.2f}"
    deletes = sum(result.delete_frames.values())
    yield f"The forwarder's delete of sent rows: {deletes:.2f} WAL frames per commit"
    for name, n in result.delete_frames.items():
        yield f"  {name:28s} {n:6.2f}"
    yield (
        f"CPU per commit (the transaction: append, outbox rows, COMMIT with its fsync): user"
        f" {result.user_us:.0f} µs, sys {result.sys_us:.0f} µs,"
        f" total {result.user_us + result.sys_us:.0f} µs"
    )


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.commit_pages")
    parser.add_argument("--batch", type=int, default=1, help="messages per commit")
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the databases go (a temporary directory)"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        for line in render_pages(measure_pages(root, batch=args.batch, commits=args.commits)):
            out(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
