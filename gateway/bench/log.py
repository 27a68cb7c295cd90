"""Benchmark of the explanation log: ``python -m gateway.bench.log [--entries N]``.

Prints, for a realistic mix (3 customers, 10 devices each, 3 recipients; a quarter withheld, the
rest carrying a ~50-byte payload; explanation texts that repeat per device, recipient and
outcome):

- appended entries/s: batches of 1000 drafts per transaction, chained, a checkpoint signed every
  (simulated) second, committed with synchronous=FULL -- what the gateway's writer thread does;
- the baseline: plain ``executemany`` of the same row shapes into the same schema, no chain, no
  hashing, no signatures, same commits;
- verified entries/s (whole log, with and without re-checking held content);
- bytes on disk per entry, in total and without the erasable content (payloads and topics).
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter

__all__ = ["main", "realistic_drafts"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECIPIENTS = ("wartung-gmbh", "energie-cloud", "hersteller-support")


def realistic_drafts(n: int, *, rate_per_s: int = 50_000) -> list[EntryDraft]:
    """``n`` drafts as the pipeline would produce them, ``rate_per_s`` per simulated second."""
    drafts: list[EntryDraft] = []
    step = timedelta(microseconds=1_000_000 // rate_per_s)
    for i in range(n):
        customer = ("baeckerei-schmidt", "metallbau-huber", "praxis-dr-weber")[i % 3]
        device = f"{customer[:6]}-dev-{(i // 3) % 10}"
        recipient = RECIPIENTS[(i // 30) % 3]
        withheld = i % 4 == 3
        payload = b'{"t":%d.%d,"hum":%d,"door":"closed"}' % (20 + i % 5, i % 10, 40 + i % 9)
        outcome = "withheld" if withheld else ("altered" if i % 4 == 2 else "shared")
        drafts.append(
            EntryDraft(
                kind="decision",
                at=T0 + step * i,
                customer=customer,
                device=device,
                recipient=recipient,
                outcome=outcome,
                grant=None if withheld else f"{recipient}-telemetry",
                policy_version="sha256:5f1c0a",
                purpose={"de": "Fernwartung", "en": "remote maintenance"},
                legal_basis=None if withheld else "contract",
                topic=None if withheld else f"{customer}/{device}/telemetry",
                content=None if withheld else payload,
                source_digest=hashlib.sha256(payload).digest(),
                shared=("t", "hum") if not withheld else (),
                altered=(("door", "coarsen", "open/closed"),) if outcome == "altered" else (),
                withheld=("t", "hum", "door") if withheld else ("door",),
                reason="no_grant" if withheld else None,
                reason_params={},
                text_de=f"{device}: {outcome} an {recipient} (Fernwartung, Vertrag).",
                text_en=f"{device}: {outcome} to {recipient} (remote maintenance, contract).",
            )
        )
    return drafts


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    return conn


def bench_append(path: Path, drafts: list[EntryDraft], signer: Signer) -> float:
    conn = _open(path)
    writer = LogWriter(conn, signer, "bench")
    last_checkpoint = drafts[0].at
    started = time.perf_counter()
    for start in range(0, len(drafts), 1000):
        batch = drafts[start : start + 1000]
        conn.execute("BEGIN IMMEDIATE")
        writer.append(batch)
        now = batch[-1].at
        if now - last_checkpoint >= timedelta(seconds=1):
            writer.checkpoint(now)
            last_checkpoint = now
        conn.execute("COMMIT")
        writer.committed()
    conn.execute("BEGIN IMMEDIATE")
    writer.checkpoint(drafts[-1].at + timedelta(seconds=1))  # clean shutdown
    conn.execute("COMMIT")
    writer.committed()
    elapsed = time.perf_counter() - started
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return elapsed


def bench_baseline(path: Path, drafts: list[EntryDraft]) -> float:
    """Same rows, same schema and commits; ids from plain dicts, no hashing or signatures."""
    conn = _open(path)
    zero = bytes(32)
    ids: dict[str | None, int | None] = {None: None}
    started = time.perf_counter()
    seq = 1
    for start in range(0, len(drafts), 1000):
        rows = []
        contents = []
        for d in drafts[start : start + 1000]:
            for name in (d.customer, d.device, d.recipient, d.text_de):
                ids.setdefault(name, len(ids))
            rows.append(
                (seq, ids[d.customer], seq, int(d.at.timestamp() * 1e6), ids[d.text_de],
                 ids[d.device], ids[d.recipient], 1, d.source_digest,
                 None if d.content is None else zero, zero)
            )  # fmt: skip
            if d.content is not None:
                contents.append((seq, ids[d.device], d.content))
            seq += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany("INSERT INTO content VALUES (?, ?, ?)", contents)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def disk_usage(path: Path) -> tuple[int, int]:
    """(database file bytes, bytes used by the erasable content and topics tables)."""
    conn = sqlite3.connect(path)
    personal = conn.execute(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN"
        " ('content', 'topics', 'sqlite_autoindex_topics_1')"
    ).fetchone()[0]
    conn.close()
    return path.stat().st_size, int(personal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.log", description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    n: int = args.entries
    drafts = realistic_drafts(n)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        signer = Signer.generate()
        append_s = bench_append(base / "log.db", drafts, signer)
        baseline_s = bench_baseline(base / "baseline.db", drafts)
        started = time.perf_counter()
        report = verify_db(base / "log.db", public_key=signer.public, check_content=False)
        verify_s = time.perf_counter() - started
        started = time.perf_counter()
        full = verify_db(base / "log.db", public_key=signer.public)
        verify_full_s = time.perf_counter() - started
        if not (report.ok and full.ok) or report.entries != n:
            print(report.summary(), file=sys.stderr)
            return 1
        size, personal = disk_usage(base / "log.db")
    print(f"explanation log benchmark: {n:,} entries, realistic mix, 1000 per transaction")
    print(f"  appended (chained, checkpointed each second, committed): {n / append_s:>10,.0f}/s")
    print(f"  baseline (plain executemany, no chain or signatures):    {n / baseline_s:>10,.0f}/s")
    print(f"  verified (chains, bodies, texts, checkpoints):           {n / verify_s:>10,.0f}/s")
    print(
        f"  verified incl. held content vs commitments:              {n / verify_full_s:>10,.0f}/s"
    )
    print(f"  bytes on disk per entry:                       {size / n:>10.1f}")
    print(f"  bytes per entry without erasable content:      {(size - personal) / n:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
